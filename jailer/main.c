/* ember-jailer: placeholder until the jailer lands (issue 6); refuses to run. */
#include <stdio.h>

int main(void)
{
    fputs("ember-jailer: not available in this build\n", stderr);
    return 1;
}
