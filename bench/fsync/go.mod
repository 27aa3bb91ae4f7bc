module sundial.dev/bench/fsync

go 1.22
