//! Test that a clean C program that makes the C library allocate for itself (stdio buffers, an open FILE, locale data, dlopen and dlerror, NSS lookups, time zones, thread-local destructor lists, threads) reports no leak.
//!
// EXPECT: clean
// EXPECT-EXIT: 0
#define _GNU_SOURCE
#include <dlfcn.h>
#include <locale.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static __thread char *per_thread;
static void release(void *p) { free(p); }
static pthread_key_t key;

static void *worker(void *arg) {
    per_thread = strdup("per-thread");
    pthread_setspecific(key, strdup("keyed"));
    char line[64];
    snprintf(line, sizeof line, "worker %ld", (long)arg);
    free(per_thread);
    return NULL;
}

int main(void) {
    setvbuf(stderr, NULL, _IOFBF, 0);
    setlocale(LC_ALL, "C.UTF-8");
    pthread_key_create(&key, release);
    if (dlopen("libheapsweep-does-not-exist.so", RTLD_NOW) == NULL) {
        const char *e = dlerror();
        printf("dlerror: %d\n", e != NULL);
    }
    void *libm = dlopen("libm.so.6", RTLD_NOW);
    printf("libm: %d\n", libm != NULL);
    struct passwd *pw = getpwnam("root");
    printf("root: %d\n", pw != NULL);
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    char when[64];
    strftime(when, sizeof when, "%c", &tm);
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    if (f != NULL && fgets(line, sizeof line, f) != NULL)
        printf("status: %d\n", line[0] != 0);
    pthread_t th[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, worker, (void *)i);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    printf("done\n");
    return 0;
}
