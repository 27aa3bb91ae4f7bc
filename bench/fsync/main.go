// Command fsync-probe measures how many durable commits per second the disk under a
// directory allows: a loop of 4 KiB appends, each followed by fsync (and, separately,
// fdatasync). One synced write per commit is the floor for any durable server that does
// not group commits, so this rate bounds what either server can do on this machine.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

type modeResult struct {
	Ops     int     `json:"ops"`
	Seconds float64 `json:"seconds"`
	PerSec  float64 `json:"per_s"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
}

func probe(dir string, sync func(int) error, d time.Duration, max int) (modeResult, error) {
	f, err := os.CreateTemp(dir, "fsync-probe-*")
	if err != nil {
		return modeResult{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	var lat []time.Duration
	t0 := time.Now()
	for i := 0; i < max && time.Since(t0) < d; i++ {
		s := time.Now()
		if _, err := f.Write(buf); err != nil {
			return modeResult{}, err
		}
		if err := sync(int(f.Fd())); err != nil {
			return modeResult{}, err
		}
		lat = append(lat, time.Since(s))
	}
	el := time.Since(t0).Seconds()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	return modeResult{Ops: len(lat), Seconds: el, PerSec: float64(len(lat)) / el, P50Ms: ms(0.5), P99Ms: ms(0.99)}, nil
}

func main() {
	dir := flag.String("dir", ".", "directory on the file system to probe")
	d := flag.Duration("duration", 2*time.Second, "time per mode")
	max := flag.Int("max", 100000, "upper bound on writes per mode")
	flag.Parse()
	abs, _ := filepath.Abs(*dir)
	out := map[string]any{"dir_fs_type": fsType(abs), "write_bytes": 4096}
	for _, m := range []struct {
		name string
		f    func(int) error
	}{{"fsync", syscall.Fsync}, {"fdatasync", syscall.Fdatasync}} {
		r, err := probe(*dir, m.f, *d, *max)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		out[m.name] = r
	}
	js, _ := json.Marshal(out)
	fmt.Println(string(js))
}

func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "unknown"
	}
	switch st.Type {
	case 0xEF53:
		return "ext4"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x794c7630:
		return "overlayfs"
	case 0x01021994:
		return "tmpfs"
	}
	return fmt.Sprintf("0x%x", st.Type)
}
