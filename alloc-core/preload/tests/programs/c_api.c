//! Test that the exported C functions keep C's rules: alignment, zero sizes, realloc of NULL and to 0, overflow and bad alignments with their error codes, usable sizes; and that nothing leaks when every block is freed.
//!
// EXPECT: clean
// EXPECT-EXIT: 0
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;
#define CHECK(cond)                                                    \
    do {                                                               \
        if (!(cond)) {                                                 \
            fprintf(stderr, "c_api.c:%d: failed: %s\n", __LINE__, #cond); \
            failures++;                                                \
        }                                                              \
    } while (0)

static int aligned_to(void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

int main(void) {
    for (size_t n = 1; n < 300; n += 7) {
        char *p = malloc(n);
        CHECK(p != NULL && aligned_to(p, 16));
        CHECK(malloc_usable_size(p) >= n);
        memset(p, 1, n);
        free(p);
    }
    void *z1 = malloc(0), *z2 = malloc(0);
    CHECK(z1 != NULL && z2 != NULL && z1 != z2);
    free(z1);
    free(z2);
    free(NULL);
    CHECK(malloc_usable_size(NULL) == 0);

    char *r = realloc(NULL, 10);
    CHECK(r != NULL);
    strcpy(r, "123456789");
    r = realloc(r, 100000);
    CHECK(r != NULL && strcmp(r, "123456789") == 0 && aligned_to(r, 16));
    r = realloc(r, 5);
    CHECK(r != NULL && memcmp(r, "12345", 5) == 0);
    errno = 0;
    CHECK(realloc(r, 0) == NULL);

    int *c = calloc(1000, sizeof(int));
    int zero = 1;
    for (int i = 0; i < 1000; i++) zero &= c[i] == 0;
    CHECK(zero);
    free(c);

    errno = 0;
    CHECK(calloc(SIZE_MAX / 2, 4) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(malloc(SIZE_MAX) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(reallocarray(NULL, SIZE_MAX / 2, 4) == NULL && errno == ENOMEM);
    void *ra = reallocarray(NULL, 10, 10);
    CHECK(ra != NULL);
    free(ra);

    void *pm = NULL;
    CHECK(posix_memalign(&pm, 3, 10) == EINVAL);
    CHECK(posix_memalign(&pm, 4, 10) == EINVAL);
    CHECK(posix_memalign(&pm, 4096, 10) == 0 && aligned_to(pm, 4096));
    free(pm);
    CHECK(posix_memalign(&pm, 1 << 21, 100) == 0 && aligned_to(pm, 1 << 21));
    free(pm);
    errno = 0;
    CHECK(aligned_alloc(24, 48) == NULL && errno == EINVAL);
    void *aa = aligned_alloc(64, 100);
    CHECK(aa != NULL && aligned_to(aa, 64));
    free(aa);
    void *ma = memalign(48, 10);
    CHECK(ma != NULL && aligned_to(ma, 64));
    free(ma);
    long page = sysconf(_SC_PAGESIZE);
    void *va = valloc(10);
    CHECK(va != NULL && aligned_to(va, page));
    free(va);
    void *pv = pvalloc(10);
    CHECK(pv != NULL && aligned_to(pv, page) && malloc_usable_size(pv) >= (size_t)page);
    free(pv);
    return failures == 0 ? 0 : 1;
}
