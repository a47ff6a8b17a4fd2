// Library entry point. Nothing here needs shared_preload_libraries: each backend registers its
// own invalidation callback the first time it loads the library.
#include "pg/ban_cache.hpp"
#include "pg/lookup.hpp"
#include "pg/pg_headers.hpp"

extern "C" {
PG_MODULE_MAGIC;
void _PG_init(void);
}

void _PG_init(void) {
    sp::pg::ban_cache::register_callbacks();
    sp::pg::lookup::register_callbacks();
}
