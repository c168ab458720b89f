/* ProcessPrng for Wine 8 (Debian 12), which lacks bcryptprimitives.dll: Rust's standard
 * library (1.78 and later) takes its random bytes from there on Windows, so without this no
 * Rust program for Windows starts under that Wine. Real Windows has the DLL; this is only
 * for scripts/wine-test. It asks RtlGenRandom (advapi32's SystemFunction036) instead. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
