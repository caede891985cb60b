"""mappa_core: the pure rules of MAPPA performance management (`rules`), the database
(`storage`), `answers` joining the two for the edges, and `synthetic_region`, the made-up
region of the demonstrations, tests and benchmarks."""
