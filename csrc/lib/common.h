/* common.h -- what every unit of the C core may need: the version and the
 * export marker. The shared object is built with -fvisibility=hidden, so
 * only what is marked SO_EXPORT (luaopen_smugoauth_core) is visible. */
#ifndef SO_COMMON_H
#define SO_COMMON_H

#define SO_VERSION "0.1.0"

#if defined(__GNUC__)
#define SO_EXPORT __attribute__((visibility("default")))
#else
#define SO_EXPORT
#endif

#endif
