// wakeup_latency_go: the Go 1.19 peer of bench/wakeup_latency.c (issue 12's target benchmark): how late a
// goroutine that sleeps 1 ms in a loop wakes up while the heap holds a large live structure and another goroutine
// churns. Same workload shape, same options and the same output lines as the C program; see the design comment at
// the top of bench/wakeup_latency.c for the phases. Standard library only; GOGC / GOMEMLIMIT come from the
// environment as usual (default GOGC=100, GOMAXPROCS = the cores).
//
// Go specifics:
//
//	live structure  [][]*obj: `arrays` slices of 16,384 pointers, each to a 64-byte obj { next *obj; idx uint64;
//	                pad [6]uint64 } (a pointer-bearing, scanned object, as pacegc's and bdwgc's conservatively
//	                scanned 64-byte objects are; next stays nil). idx holds the slot's pattern, as word 0 does in C.
//	sleeper         a goroutine locked to its OS thread (runtime.LockOSThread, as the C sleeper is one pthread):
//	                intended = now + 1 ms; time.Sleep(1 ms); lateness = now - intended. Go's timers are run by the
//	                scheduler, so lateness includes the time until a P runs the timer and the handoff to the locked
//	                thread, as well as stop-the-world pauses and the CPU that background marking takes (Go 1.19
//	                dedicates 25% of GOMAXPROCS to marking: one of two cores) and mark assists.
//	churn           a goroutine: churn_bytes / 64 allocations of obj; every 64th replaces the slot chosen by the
//	                same xorshift64 sequence as the C program and carries its pattern; the rest go into a 256-slot
//	                global ring.
//	collections     MemStats.NumGC before and after the churn; the longest pause is the maximum of MemStats.PauseNs
//	                over the cycles that completed during the churn (the ring holds the last 256; with more, its
//	                maximum over all 256). A Go cycle's PauseNs sums its two short stop-the-world pauses; marking
//	                itself runs concurrently and is not in it.
//	peak RSS        getrusage ru_maxrss.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	allocator       = "go"
	pointersPerArr  = 16384
	objectBytes     = 64
	replaceEvery    = 64
	ringSlots       = 256
	maxArrays       = 4096
	sleepPeriod     = time.Millisecond
	histBuckets     = 32
	lateLimitNs     = 25_000_000
	bytesPerGiB     = 1 << 30
	nsPerMs         = 1e6
	defaultLiveGiB  = 1.0
	defaultChurnGiB = 8.0
)

type obj struct {
	next *obj
	idx  uint64
	pad  [6]uint64
}

var (
	arrays [][]*obj        // the live structure; written by main (build) and the churn goroutine
	ring   [ringSlots]*obj // the churn's short-lived objects
)

func pattern(array, slot uint64) uint64 { return (array<<20|slot)<<1 | 1 }

func xorshift64(state *uint64) uint64 {
	x := *state
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	*state = x
	return x
}

func badOption(what string) {
	fmt.Fprintf(os.Stderr, "wakeup_latency_go: %s (usage: wakeup_latency_go [--live-gib G] [--churn-gib G], G > 0, live <= 4)\n", what)
	os.Exit(2)
}

func parseGiB(name, text string) float64 {
	v, err := strconv.ParseFloat(text, 64)
	if err != nil || !(v > 0) || v > 1024 {
		badOption(fmt.Sprintf("%s needs a positive number of GiB, not '%s'", name, text))
	}
	return v
}

// nearest rank, as in the C program
func quantile(sorted []int64, q float64) int64 {
	n := len(sorted)
	rank := int(q*float64(n) + 0.999999)
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	return sorted[rank-1]
}

func main() {
	liveGiB, churnGiB := defaultLiveGiB, defaultChurnGiB
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--live-gib" && i+1 < len(args):
			i++
			liveGiB = parseGiB("--live-gib", args[i])
		case args[i] == "--churn-gib" && i+1 < len(args):
			i++
			churnGiB = parseGiB("--churn-gib", args[i])
		default:
			badOption(fmt.Sprintf("unknown or incomplete option '%s'", args[i]))
		}
	}
	numArrays := int(liveGiB*1024 + 0.5)
	if numArrays < 1 || numArrays > maxArrays {
		badOption("--live-gib must be between 1/1024 and 4")
	}
	churnAllocs := uint64(churnGiB*bytesPerGiB) / objectBytes
	if churnAllocs < replaceEvery {
		badOption("--churn-gib is too small")
	}

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gc0 := ms.NumGC

	// build
	t0 := time.Now()
	arrays = make([][]*obj, numArrays)
	for a := range arrays {
		arr := make([]*obj, pointersPerArr)
		for i := range arr {
			arr[i] = &obj{idx: pattern(uint64(a), uint64(i))}
		}
		arrays[a] = arr
	}
	buildNs := time.Since(t0).Nanoseconds()
	runtime.ReadMemStats(&ms)
	gc1 := ms.NumGC
	fmt.Printf("build allocator=%s arrays=%d objects=%d wall_ms=%.1f gcs=%d\n", allocator, numArrays,
		numArrays*pointersPerArr, float64(buildNs)/nsPerMs, gc1-gc0)

	// churn
	var stopSleeper atomic.Bool
	var late []int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		late = make([]int64, 0, 65536)
		for !stopSleeper.Load() {
			intended := time.Now().Add(sleepPeriod)
			time.Sleep(sleepPeriod)
			d := time.Since(intended).Nanoseconds()
			if d < 0 {
				d = 0
			}
			late = append(late, d)
		}
	}()
	var churnNs int64
	var replaced uint64
	done := make(chan struct{})
	go func() {
		rng := uint64(0x9E3779B97F4A7C15)
		liveObjects := uint64(numArrays) * pointersPerArr
		n0 := time.Now()
		for n := uint64(0); n < churnAllocs; n++ {
			o := &obj{}
			if n%replaceEvery == replaceEvery-1 {
				slot := xorshift64(&rng) % liveObjects
				a, i := slot/pointersPerArr, slot%pointersPerArr
				o.idx = pattern(a, i)
				arrays[a][i] = o
				replaced++
			} else {
				o.idx = n<<1 | 1
				ring[n%ringSlots] = o
			}
		}
		churnNs = time.Since(n0).Nanoseconds()
		close(done)
	}()
	<-done
	stopSleeper.Store(true)
	wg.Wait()
	runtime.ReadMemStats(&ms)
	gc2 := ms.NumGC
	var pauseMax uint64
	for n := gc1 + 1; n <= gc2 && n+256 > gc2; n++ { // cycle n's pause is PauseNs[(n+255)%256]
		if p := ms.PauseNs[(n+255)%256]; p > pauseMax {
			pauseMax = p
		}
	}

	// verify
	t2 := time.Now()
	for a := range arrays {
		for i, o := range arrays[a] {
			if o == nil || o.idx != pattern(uint64(a), uint64(i)) {
				var got uint64
				if o != nil {
					got = o.idx
				}
				fmt.Fprintf(os.Stderr, "wakeup_latency_go: live structure broken at array %d slot %d: holds %#x\n", a, i, got)
				fmt.Printf("RESULT allocator=%s verified=0\n", allocator)
				os.Exit(1)
			}
		}
	}
	verifyNs := time.Since(t2).Nanoseconds()

	n := len(late)
	if n == 0 {
		fmt.Fprintln(os.Stderr, "wakeup_latency_go: the sleeper never woke up")
		os.Exit(1)
	}
	var hist [histBuckets]uint64
	over25 := 0
	for _, d := range late {
		us := uint64(d / 1000)
		b := 0
		for b < histBuckets-1 && us >= 1<<b {
			b++
		}
		hist[b]++
		if d > lateLimitNs {
			over25++
		}
	}
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	p50, p99, p999, max := quantile(late, 0.50), quantile(late, 0.99), quantile(late, 0.999), late[n-1]

	fmt.Printf("latency allocator=%s hist_lt_2pow_us=", allocator)
	last := histBuckets - 1
	for last > 0 && hist[last] == 0 {
		last--
	}
	for b := 0; b <= last; b++ {
		if b > 0 {
			fmt.Print(",")
		}
		fmt.Print(hist[b])
	}
	fmt.Println()

	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	ms2 := func(ns int64) float64 { return float64(ns) / nsPerMs }
	fmt.Printf("RESULT allocator=%s live_gib=%g churn_gib=%g wakeups=%d late_max_ms=%.3f late_p50_ms=%.3f "+
		"late_p99_ms=%.3f late_p999_ms=%.3f late_over_25ms=%d churn_ms=%.1f gcs=%d pause_max_ms=%.3f "+
		"replaced=%d verified=1 build_ms=%.1f build_gcs=%d maxrss_mib=%d\n",
		allocator, liveGiB, churnGiB, n, ms2(max), ms2(p50), ms2(p99), ms2(p999), over25, ms2(churnNs), gc2-gc1,
		float64(pauseMax)/nsPerMs, replaced, ms2(buildNs), gc1-gc0, ru.Maxrss/1024)
	fmt.Printf("%s: %d arrays (%.2f GiB live), %.2f GiB churn in %.2f s with %d collections (longest pause %.1f ms)\n",
		allocator, numArrays, float64(numArrays)/1024, churnGiB, float64(churnNs)/1e9, gc2-gc1,
		float64(pauseMax)/nsPerMs)
	fmt.Printf("%s: sleeper woke %d times; late by p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.1f ms "+
		"(%d wake-ups more than 25 ms late)\n", allocator, n, ms2(p50), ms2(p99), ms2(p999), ms2(max), over25)
	fmt.Printf("%s: live structure intact (%d slots replaced, verified in %.0f ms); peak RSS %d MiB\n", allocator,
		replaced, ms2(verifyNs), ru.Maxrss/1024)
}
