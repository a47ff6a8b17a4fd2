// Library entry point. Nothing here needs shared_preload_libraries: each backend registers its
// own invalidation callbacks the first time it loads the library. Preloaded, the library also
// reserves the shared ban set (pg/shared_ban_set).
#include "pg/ban_cache.hpp"
#include "pg/citus.hpp"
#include "pg/lookup.hpp"
#include "pg/pg_headers.hpp"
#include "pg/shared_ban_set.hpp"

extern "C" {
PG_MODULE_MAGIC;
void _PG_init(void);
}

void _PG_init(void) {
    if (process_shared_preload_libraries_in_progress) {
        sp::pg::shared_bans::define_at_preload();
        sp::pg::citus::install_set_guard();
    }
    sp::pg::ban_cache::register_callbacks();
    sp::pg::lookup::register_callbacks();
}
