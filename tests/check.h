/* The tests' one assertion: counts, prints failures, and the summary line tests/run.sh reads. */
#include <stdio.h>
static int check_pass, check_fail;
#define CHECK(c, what) ((c) ? (void)check_pass++ : (void)(check_fail++, printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, (what))))
static int check_report(void) {
    printf("%d passed, %d failed\n", check_pass, check_fail);
    return check_fail != 0;
}
