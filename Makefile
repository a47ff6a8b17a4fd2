# sp_users — built with PGXS. `make` builds the library and the install script, `make install`
# installs both, `make installcheck` runs pg_regress + isolation tests against $PGHOST/$PGPORT.
# scripts/test-all runs every suite (unit, fuzz smoke, pg_regress, isolation, pgTAP) on a fresh cluster.

EXTENSION   = sp_users
EXTVERSION  = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" sp_users.control)
MODULE_big  = sp_users

CORE_SRCS   = $(wildcard src/core/*.cpp)
PG_SRCS     = $(wildcard src/pg/*.cpp)
OBJS        = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

# One install-script source, split by domain, assembled in file-name order.
INSTALL_PARTS = $(sort $(wildcard sql/install/*.sql))
DATA_built    = sp_users--$(EXTVERSION).sql
# Shipped versions' frozen install scripts and the chained upgrade scripts between them.
DATA          = $(wildcard sql/sp_users--*.sql)
EXTRA_CLEAN   = $(DATA_built) results regression.diffs regression.out output_iso test/unit/build

REGRESS       = guard users roles sessions bans anonymous
ISOLATION     = create_user_race ban_concurrency ban_incremental anonymous_races merge_races counter_compaction brute_force
ISOLATION_OPTS = --inputdir=test/isolation

PG_CONFIG  ?= pg_config
PG_CPPFLAGS = -I$(srcdir)/src
PG_CXXFLAGS = -std=c++17 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-register -Werror
SHLIB_LINK  = -lstdc++

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS's C++ rules use CXXFLAGS; keep our flags out of PostgreSQL's C-only warnings.
override CXXFLAGS := $(filter-out -Wmissing-prototypes -Wdeclaration-after-statement,$(CXXFLAGS))
override BITCODE_CXXFLAGS += -std=c++17 -Wno-register -I$(srcdir)/src

$(DATA_built): $(INSTALL_PARTS) sp_users.control
	@{ echo "-- sp_users $(EXTVERSION) — generated from sql/install/*.sql by make; edit those files."; \
	   printf '%s\n' '\echo Use "CREATE EXTENSION sp_users" to load this file. \quit'; \
	   for f in $(INSTALL_PARTS); do echo; echo "-- ==== $$f"; cat $$f; done; } > $@

.PHONY: unit fuzz-smoke dist
unit:
	$(MAKE) -C test/unit run
fuzz-smoke:
	$(MAKE) -C test/fuzz smoke

# The PGXN release archive: the committed tree at HEAD, under sp_users-<version>/.
dist:
	git archive --format zip --prefix=sp_users-$(EXTVERSION)/ -o sp_users-$(EXTVERSION).zip HEAD

# PGXS tracks no header dependencies: rebuild every object when any header changes, so no object
# is ever compiled against an older layout of a shared type.
HEADERS = $(wildcard src/core/*.hpp src/pg/*.hpp)
$(OBJS) $(OBJS:.o=.bc): $(HEADERS)
