// DSO_API marks the functions libdso exports. The library is compiled with hidden visibility
// (-fvisibility=hidden), so only the functions declared with DSO_API in include/dso/ are visible
// in the shared library libdso.so; everything else is internal and may change at any release.
#ifndef DSO_EXPORT_H
#define DSO_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define DSO_API __attribute__((visibility("default")))
#else
#define DSO_API
#endif

#endif  // DSO_EXPORT_H
