//! Test that a C program's leaks under LD_PRELOAD are found exactly: a direct leak, a leaked list (one direct head, an indirect tail), a calloc'd block and a realloc'd one, with reachable blocks and libc's own allocations left out.
//!
// EXPECT: leaked_blocks=6 leaked_bytes=540 direct_blocks=4 indirect_blocks=2 cyclic_blocks=0
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=100 function~=make_direct
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=16 function~=make_list
// EXPECT-GROUP: kind=indirect cyclic=false blocks=2 bytes=32 function~=make_list
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=192 function~=make_zeroed
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=200 function~=make_grown
// EXPECT-EXIT: 23
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node { struct node *next; long value; };

/* Reachable until exit: a global root, and what it points to. */
static struct node *kept;

/* Leaks are made in frames of their own, then the stack below main's frame is cleared:
   the check is conservative, and a dead frame's slot could still hold the pointer. */
__attribute__((noinline)) static void make_direct(void) {
    char *p = malloc(100);
    memset(p, 1, 100);
    p = NULL;
}

__attribute__((noinline)) static void make_list(void) {
    struct node *head = NULL;
    for (int i = 0; i < 3; i++) {
        struct node *n = malloc(sizeof *n);
        n->next = head;
        n->value = i;
        head = n;
    }
    head = NULL;
}

__attribute__((noinline)) static void make_zeroed(void) {
    long *p = calloc(24, sizeof(long));
    p[3] = 7;
}

__attribute__((noinline)) static void make_grown(void) {
    char *p = malloc(10);
    p = realloc(p, 200);
    memset(p, 2, 200);
}

__attribute__((noinline)) static void freed_everything(void) {
    void *a = malloc(1000), *b = calloc(10, 10), *c = NULL;
    c = realloc(c, 50);
    c = realloc(c, 5000);
    free(a);
    free(b);
    free(c);
    free(NULL);
}

__attribute__((noinline)) static void clear_stack(void) {
    volatile char buf[16384];
    memset((char *)buf, 0, sizeof buf);
}

int main(void) {
    kept = malloc(sizeof *kept);
    kept->next = malloc(sizeof *kept);
    kept->next->next = NULL;
    make_direct();
    make_list();
    make_zeroed();
    make_grown();
    freed_everything();
    clear_stack();
    printf("kept %ld\n", kept->value);
    return 0;
}
