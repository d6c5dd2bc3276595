//! Test that leaks made on several threads of a C program are found exactly, while blocks held by a thread still running at exit (on its stack) and blocks kept in a global stay reachable.
//!
// EXPECT: leaked_blocks=4 leaked_bytes=96 direct_blocks=4 indirect_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=4 bytes=96 function~=leak_one
// EXPECT-EXIT: 23
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *kept[4];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;

__attribute__((noinline)) static void leak_one(void) {
    char *p = malloc(24);
    memset(p, 3, 24);
}

__attribute__((noinline)) static void clear_stack(void) {
    volatile char buf[16384];
    memset((char *)buf, 0, sizeof buf);
}

static void *worker(void *arg) {
    long i = (long)arg;
    leak_one();
    kept[i] = malloc(40);
    for (int k = 0; k < 1000; k++)
        free(malloc(16 + k));
    clear_stack();
    return NULL;
}

/* Runs until exit, holding a block only on its stack. */
static void *holder(void *arg) {
    (void)arg;
    volatile char *mine = malloc(64);
    mine[0] = 1;
    pthread_mutex_lock(&lock);
    for (;;)
        pthread_cond_wait(&never, &lock);
    return (void *)mine;
}

int main(void) {
    pthread_t th[4], h;
    pthread_create(&h, NULL, holder, NULL);
    for (long i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, worker, (void *)i);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    printf("joined\n");
    return 0;
}
