# Keeps a 64 KiB bytes object every 50 ms for argv[1] seconds: 1.3 MB/s that Python's object allocator takes
# from malloc (objects above 512 bytes bypass its own pools), so the leak is jemalloc's to see.
import sys
import time

kept = []
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    kept.append(b"x" * 65536)
    time.sleep(0.05)
print("held", len(kept), flush=True)
