/* A program with its own allocator (a bump allocator over a static arena, standing in for tcmalloc or a
 * statically linked jemalloc): it defines malloc and its family, so the executable's definitions come
 * first in symbol lookup and a preloaded jemalloc never serves it. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static unsigned char arena[64 << 20];
static size_t used;

static void* take(size_t size, size_t alignment) {
  size_t start = (used + alignment - 1) & ~(alignment - 1);
  if (start + size + 16 > sizeof arena) return NULL;
  memcpy(arena + start, &size, sizeof size); /* the size, for realloc */
  used = start + 16 + size;
  return arena + start + 16;
}

void* malloc(size_t size) { return take(size, 16); }
void free(void* pointer) { (void)pointer; }
void* calloc(size_t count, size_t size) {
  if (size != 0 && count > SIZE_MAX / size) return NULL;
  return take(count * size, 16); /* the arena is zeroed and never reused */
}
void* realloc(void* pointer, size_t size) {
  void* moved = malloc(size);
  if (moved != NULL && pointer != NULL) {
    size_t old;
    memcpy(&old, (unsigned char*)pointer - 16, sizeof old);
    memcpy(moved, pointer, old < size ? old : size);
  }
  return moved;
}
void* memalign(size_t alignment, size_t size) {
  unsigned char* block = take(size + alignment, 16);
  if (block == NULL) return NULL;
  uintptr_t aligned = ((uintptr_t)block + alignment - 1) & ~(uintptr_t)(alignment - 1);
  return (void*)aligned;
}
void* aligned_alloc(size_t alignment, size_t size) { return memalign(alignment, size); }
int posix_memalign(void** out, size_t alignment, size_t size) {
  *out = memalign(alignment, size);
  return *out == NULL ? ENOMEM : 0;
}
size_t malloc_usable_size(void* pointer) {
  size_t size;
  memcpy(&size, (unsigned char*)pointer - 16, sizeof size);
  return size;
}

int main(void) {
  char* text = malloc(64);
  strcpy(text, "own-malloc program ran");
  puts(text);
  return 0;
}
