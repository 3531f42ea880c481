/* A statically linked program: LD_PRELOAD never applies to it, so riptide-run must refuse it. */
#include <stdio.h>

int main(void) {
  puts("static program ran");
  return 0;
}
