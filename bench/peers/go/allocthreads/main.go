// alloc_threads_go: the Go 1.19 peer of bench/alloc_threads.cc's "ring" shape (issue 17: allocation that scales
// with threads). Each of N goroutines allocates 64-byte objects and keeps the newest 4,096 of its own in a ring;
// the object a new one evicts becomes garbage. The figure is the aggregate rate: every goroutine's allocations over
// the wall time of the run, in the units Google Benchmark prints for the C++ program (items per second).
//
// Go specifics:
//
//	object      obj { next *obj; pad [7]uint64 }: 64 bytes with a pointer, so it is scanned, as pacegc's and
//	            bdwgc's conservatively scanned 64-byte objects are. next stays nil; pad[0] is written (the C++
//	            program writes the first word too), so the allocation is not dead code.
//	ring        a [4096]*obj array on each goroutine's stack (it does not escape), as the C++ ring is on each
//	            thread's stack: a root the collector scans.
//	threads     goroutines, GOMAXPROCS from the environment (default: the cores). Each allocates in batches of
//	            1,024 and checks a stop flag between batches; the run lasts --min-time seconds after all started.
//	collections runtime.MemStats.NumGC before and after each run, printed beside the rate.
//
// Output, one line per thread count (1, 2, 4, 8 unless --threads says otherwise):
//
//	ring/threads:N items_per_second=R gcs=G seconds=S
//
// Usage: alloc_threads_go [--min-time SECONDS] [--threads N[,N...]]. Bad options: one line on stderr, exit 2.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type obj struct {
	next *obj
	pad  [7]uint64
}

const ringSlots = 4096
const batch = 1024

func worker(stop *int32, count *int64, start *sync.WaitGroup, done *sync.WaitGroup, seed uint64) {
	defer done.Done()
	var ring [ringSlots]*obj
	var n int64
	i := seed
	start.Done()
	for atomic.LoadInt32(stop) == 0 {
		for k := 0; k < batch; k++ {
			o := &obj{}
			o.pad[0] = i
			ring[i&(ringSlots-1)] = o
			i++
		}
		n += batch
	}
	atomic.AddInt64(count, n)
	runtime.KeepAlive(&ring)
}

func run(threads int, minTime time.Duration) (float64, uint32, float64) {
	var stop int32
	var count int64
	var start, done sync.WaitGroup
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	gc0 := ms.NumGC
	start.Add(threads)
	done.Add(threads)
	t0 := time.Now()
	for t := 0; t < threads; t++ {
		go worker(&stop, &count, &start, &done, uint64(t)<<40)
	}
	start.Wait()
	time.Sleep(minTime)
	atomic.StoreInt32(&stop, 1)
	done.Wait()
	secs := time.Since(t0).Seconds()
	runtime.ReadMemStats(&ms)
	return float64(count) / secs, ms.NumGC - gc0, secs
}

func bad(msg string) {
	fmt.Fprintf(os.Stderr, "alloc_threads_go: %s (usage: alloc_threads_go [--min-time SECONDS] [--threads N[,N...]])\n", msg)
	os.Exit(2)
}

func main() {
	minTime := 0.5
	threads := []int{1, 2, 4, 8}
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--min-time" && i+1 < len(args):
			v, err := strconv.ParseFloat(args[i+1], 64)
			if err != nil || !(v > 0) || v > 3600 {
				bad(fmt.Sprintf("--min-time needs a positive number of seconds, not '%s'", args[i+1]))
			}
			minTime = v
			i++
		case args[i] == "--threads" && i+1 < len(args):
			threads = nil
			for _, f := range strings.Split(args[i+1], ",") {
				n, err := strconv.Atoi(f)
				if err != nil || n < 1 || n > 64 {
					bad(fmt.Sprintf("--threads needs thread counts from 1 to 64, not '%s'", f))
				}
				threads = append(threads, n)
			}
			i++
		default:
			bad(fmt.Sprintf("unknown or incomplete option '%s'", args[i]))
		}
	}
	for _, n := range threads {
		rate, gcs, secs := run(n, time.Duration(minTime*float64(time.Second)))
		fmt.Printf("ring/threads:%d items_per_second=%.4g gcs=%d seconds=%.3f\n", n, rate, gcs, secs)
	}
}
