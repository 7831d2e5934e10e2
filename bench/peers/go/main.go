// oomsim-worker-go: the Go 1.19 peer worker of pacegc-oomsim. It speaks bench/oomsim/PROTOCOL.md; the parent runs it
// exactly like the pacegc and bdwgc workers, under the same memory cap, with GOGC / GOMEMLIMIT in the environment
// (read natively by the Go runtime). Standard library only.
//
// Where Go 1.19 cannot give a protocol field directly, the worker uses the sources below (also in ../README.md):
//
//	heap_alloc  MemStats.HeapAlloc (includes dead objects the sweeper has not freed yet, as Go defines it).
//	heap_goal   MemStats.NextGC (na when it is "infinite": GOGC=off and no GOMEMLIMIT).
//	total       MemStats.Sys - MemStats.HeapReleased: what GOMEMLIMIT counts (mapped, not returned to the OS).
//	live        Go 1.19 has no "/gc/heap/live:bytes" (added in 1.21) and HeapAlloc right after a cycle still
//	            includes unswept garbage, so the marked heap is recovered from the goal, which the runtime sets from
//	            it: goal = marked + (marked + stacks) x GOGC/100 (runtime/mgcpacer.go, gcPercentHeapGoal), hence
//	            marked = (NextGC - StackInuse x GOGC/100) / (1 + GOGC/100). Exact up to globals (tiny here) and the
//	            4 MiB minimum heap. It is Go's marked heap, so it includes what was allocated (black) during the
//	            mark phase: under heavy churn it sits well above the workload's nominal live bytes. When the goal
//	            may be the memory-limit goal instead (GOMEMLIMIT set and NextGC at or above 97% of the limit-based
//	            goal recomputed from MemStats the way mgcpacer.go does), or GOGC=off, the inverse does not hold and
//	            live is "na".
//	limiter     "/gc/limiter/last-enabled:gc-cycle" is the cycle in which the CPU limiter last switched on; a sample
//	            reports 1 when that value changed since the previous sample or names the cycle now in progress
//	            (NumGC+1). limiter_on_ns sums the sample periods that reported 1 (sample-period resolution).
//	pauses      MemStats.PauseNs (a 256-entry ring; the sampler reads it every period, far more often than it
//	            could wrap in these workloads). One value per cycle: both stop-the-world pauses of that cycle.
//	gc_cpu_fraction  MemStats.GCCPUFraction at the end (GC CPU / (GOMAXPROCS x wall) since the process started).
//
// Workload (PROTOCOL.md, revised; identical to worker_pacegc.c): the live structure is a FIFO list of chunks of 128
// pointer words (1024 bytes; word 0 the next chunk, words 1..127 nodes); a node is a pointer-bearing object of
// --object-size bytes, word 0 a pointer field left nil, the rest the pattern 0xA5..A5. Churn objects are nodes too,
// stored into a ring of 4096 slots with one payload word written.
// Objects: for the default --object-size 64 the node is struct{ next unsafe.Pointer; pad [7]uint64 } = 64 bytes
// (pointer word first, pointer-free payload). For other sizes the worker builds the same shape at run time with
// reflect.StructOf({Next unsafe.Pointer; Pad [size-8]byte}) and allocates it with reflect.New: the layout and the
// pointer bitmap are exact (Go rounds the struct to a multiple of 8 and the allocator to its size class, as for any
// object), but allocation goes through reflect, which is slower than the typed fast path of the default size.
//
// Output extensions (the parent ignores unknown keys; the same ones as the pacegc worker): `start` carries gogc= and
// memory_limit= as the runtime read them; `sample` carries gc_cpu= (MemStats.GCCPUFraction so far, so a killed run
// still has one); `result` carries pauses_lost= (cycles whose PauseNs entry was overwritten before it was read).
package main

import (
	"fmt"
	"math"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

const (
	prog      = "oomsim-worker-go"
	ringSlots = 4096               // protocol: each garbage object dies after 4096 more allocations
	pattern   = 0xA5A5A5A5A5A5A5A5 // as worker_pacegc.c: a non-canonical address, never a heap pointer
	// runtime/mgcpacer.go (1.19): memoryLimitHeapGoalHeadroom.
	limitHeadroom = 1 << 20
)

type node64 struct {
	next unsafe.Pointer
	pad  [7]uint64
}

type phase struct{ live, churn uint64 }

type options struct {
	phases   []phase
	objSize  uint64
	ballast  uint64
	tunerPct float64 // 0: no tuner
	capBytes uint64
	sampleMs int
}

// ---- argument parsing --------------------------------------------------------------------------------------------

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, prog+": "+format+"\n", args...)
	os.Exit(2)
}

// parseSize accepts GOMEMLIMIT's syntax: a non-negative integer with an optional B, KiB, MiB, GiB, TiB, PiB or EiB.
func parseSize(s string) (uint64, bool) {
	units := []struct {
		suffix string
		shift  uint
	}{{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}, {"PiB", 50}, {"EiB", 60}, {"B", 0}}
	shift := uint(0)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, shift = strings.TrimSuffix(s, u.suffix), u.shift
			break
		}
	}
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || (shift > 0 && n > math.MaxInt64>>shift) {
		return 0, false
	}
	return n << shift, true
}

func parseArgs(args []string) options {
	o := options{objSize: 64, sampleMs: 20}
	seenPhases, seenTuner, seenCap := false, false, false
	for i := 0; i < len(args); i++ {
		name, val, hasVal := args[i], "", false
		if eq := strings.IndexByte(name, '='); eq >= 0 && strings.HasPrefix(name, "--") {
			name, val, hasVal = name[:eq], name[eq+1:], true
		}
		switch name {
		case "--phases", "--object-size", "--ballast", "--tuner-pct", "--cap", "--sample-ms":
		default:
			die("unknown argument %q (usage: %s --phases LIVE:CHURN[,...] [--object-size BYTES] [--ballast BYTES] "+
				"[--tuner-pct PCT --cap BYTES] [--sample-ms MS])", args[i], prog)
		}
		if !hasVal {
			if i+1 >= len(args) {
				die("%s: missing value", name)
			}
			i++
			val = args[i]
		}
		switch name {
		case "--phases":
			seenPhases = true
			o.phases = nil
			for _, p := range strings.Split(val, ",") {
				lc := strings.Split(p, ":")
				if len(lc) != 2 {
					die("--phases: %q is not LIVE:CHURN", p)
				}
				live, ok1 := parseSize(lc[0])
				churn, ok2 := parseSize(lc[1])
				if !ok1 || !ok2 {
					die("--phases: bad size in %q (sizes use GOMEMLIMIT syntax: 64MiB, 1GiB, 4096)", p)
				}
				o.phases = append(o.phases, phase{live, churn})
			}
		case "--object-size":
			n, ok := parseSize(val)
			if !ok || n < 8 || n > 1<<20 {
				die("--object-size: %q is not a size between 8 and 1MiB", val)
			}
			o.objSize = n
		case "--ballast":
			n, ok := parseSize(val)
			if !ok {
				die("--ballast: %q is not a size (GOMEMLIMIT syntax)", val)
			}
			o.ballast = n
		case "--tuner-pct":
			f, err := strconv.ParseFloat(val, 64)
			if err != nil || !(f > 0 && f <= 100) {
				die("--tuner-pct: %q is not a percentage in (0, 100]", val)
			}
			o.tunerPct, seenTuner = f, true
		case "--cap":
			n, ok := parseSize(val)
			if !ok || n == 0 {
				die("--cap: %q is not a positive size (GOMEMLIMIT syntax)", val)
			}
			o.capBytes, seenCap = n, true
		case "--sample-ms":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > 60000 {
				die("--sample-ms: %q is not an integer between 1 and 60000", val)
			}
			o.sampleMs = n
		}
	}
	if !seenPhases {
		die("--phases: required (e.g. --phases 64MiB:1GiB,128MiB:1GiB)")
	}
	if seenTuner && !seenCap {
		die("--tuner-pct: needs --cap BYTES")
	}
	return o
}

// ---- output ------------------------------------------------------------------------------------------------------

var (
	outMu sync.Mutex
	t0    = time.Now()
)

// emit writes one line to stdout with a single write (os.Stdout is unbuffered: flushed per line).
func emit(format string, args ...interface{}) {
	line := fmt.Sprintf(format+"\n", args...)
	outMu.Lock()
	os.Stdout.WriteString(line)
	outMu.Unlock()
}

func ms() int64 { return time.Since(t0).Milliseconds() }

// ---- pacing state ------------------------------------------------------------------------------------------------

var (
	gcPercent   atomic.Int64 // current GOGC (-1 = off); the tuner changes it
	memoryLimit int64        // GOMEMLIMIT as the runtime has it (math.MaxInt64 = none)
)

// liveEstimate recovers the last cycle's marked bytes from the heap goal (see the file comment).
func liveEstimate(m *runtime.MemStats) (uint64, bool) {
	g := gcPercent.Load()
	if g < 0 || m.NextGC == 0 || m.NextGC >= 1<<62 {
		return 0, false
	}
	if memoryLimit != math.MaxInt64 {
		// The memory-limit goal as runtime/mgcpacer.go (1.19) computes it, from MemStats.
		mappedReady := m.Sys - m.HeapReleased
		heapFree := m.HeapIdle - m.HeapReleased
		nonHeap := int64(mappedReady) - int64(heapFree) - int64(m.HeapAlloc)
		overage := int64(mappedReady) - memoryLimit
		if overage < 0 {
			overage = 0
		}
		limitGoal := memoryLimit - nonHeap - overage - limitHeadroom
		if float64(m.NextGC) >= 0.97*float64(limitGoal) {
			return 0, false // the goal may be the limit's, not GOGC's
		}
	}
	stacks := m.StackInuse * uint64(g) / 100
	if stacks >= m.NextGC {
		return 0, false
	}
	return (m.NextGC - stacks) * 100 / uint64(100+g), true
}

// ---- tuner: a self-re-arming finalizer on a sentinel runs once per cycle -----------------------------------------

type sentinel struct {
	p   *int // pointer-bearing, so it is never a tiny allocation (finalizers on tiny objects may not run)
	pad [2]uint64
}

var tunerThreshold float64 // PCT/100 x cap, in bytes

func armSentinel() {
	s := &sentinel{}
	runtime.SetFinalizer(s, func(*sentinel) {
		tune()
		armSentinel()
	})
}

func tune() {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	live, ok := liveEstimate(&m)
	if !ok || live == 0 {
		return
	}
	g := (tunerThreshold - float64(live)) / float64(live) * 100
	if g < 10 {
		g = 10
	} else if g > 500 {
		g = 500
	}
	gcPercent.Store(int64(g))
	debug.SetGCPercent(int(g))
}

// ---- sampler -----------------------------------------------------------------------------------------------------

type sampler struct {
	mu          sync.Mutex
	lastNumGC   uint32
	pauses      []uint64
	missed      uint64
	lastLimiter uint64
	lastT       time.Duration
	limiterOn   time.Duration
	peakTotal   uint64
	msamples    []metrics.Sample
}

func newSampler() *sampler {
	return &sampler{msamples: []metrics.Sample{{Name: "/gc/limiter/last-enabled:gc-cycle"}}}
}

func na(v uint64, ok bool) string {
	if !ok {
		return "na"
	}
	return strconv.FormatUint(v, 10)
}

// collect reads the runtime once; with print it also writes a sample line.
func (s *sampler) collect(print bool) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	metrics.Read(s.msamples)
	now := time.Since(t0)

	s.mu.Lock()
	defer s.mu.Unlock()
	// Pauses of the cycles completed since the last read (PauseNs is a ring of 256, cycle n at (n+255)%256).
	if n := m.NumGC - s.lastNumGC; n > 0 {
		from := s.lastNumGC + 1
		if n > 256 {
			s.missed += uint64(n - 256)
			from = m.NumGC - 255
		}
		for c := from; c <= m.NumGC; c++ {
			s.pauses = append(s.pauses, m.PauseNs[(c+255)%256])
		}
		s.lastNumGC = m.NumGC
	}
	limiter := "na"
	if v := s.msamples[0].Value; v.Kind() == metrics.KindUint64 {
		le := v.Uint64()
		on := (le != s.lastLimiter) || (le != 0 && le == uint64(m.NumGC)+1)
		s.lastLimiter = le
		limiter = "0"
		if on {
			limiter = "1"
			s.limiterOn += now - s.lastT
		}
	}
	s.lastT = now
	total := m.Sys - m.HeapReleased
	if total > s.peakTotal {
		s.peakTotal = total
	}
	if !print {
		return
	}
	live, liveOK := liveEstimate(&m)
	emit("sample t_ms=%d heap_alloc=%d heap_goal=%s total=%d live=%s gc=%d limiter=%s gc_cpu=%.4f",
		now.Milliseconds(), m.HeapAlloc, na(m.NextGC, m.NextGC < 1<<62), total, na(live, liveOK), m.NumGC, limiter,
		m.GCCPUFraction)
}

func (s *sampler) run(period time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	t := time.NewTicker(period)
	defer t.Stop()
	defer close(done)
	for {
		select {
		case <-t.C:
			s.collect(true)
		case <-stop:
			return
		}
	}
}

// ---- workload ----------------------------------------------------------------------------------------------------

// chunk: 128 pointer words (1024 bytes); word 0 the next chunk, words 1..127 nodes (PROTOCOL.md, revised).
const chunkWords = 128

type chunk [chunkWords]unsafe.Pointer

const chunkBytes = uint64(unsafe.Sizeof(chunk{}))

var (
	ring      [ringSlots]unsafe.Pointer
	slot      uint64
	headChunk *chunk // oldest chunk; node slots [headIndex, end) are occupied
	tailChunk *chunk // newest chunk; node slots [1, tailIndex) are occupied
	headIndex = 1
	tailIndex = chunkWords
	nodes     uint64
	chunks    uint64
	ballast   []byte
	objType   reflect.Type // nil: the static node64
	objSize   uint64
)

func newObj() unsafe.Pointer {
	if objType == nil {
		return unsafe.Pointer(new(node64))
	}
	return reflect.New(objType).UnsafePointer()
}

// fillPayload writes the non-pointer pattern into every payload byte (word 0, the pointer field, stays nil).
func fillPayload(p unsafe.Pointer) {
	if objType == nil {
		n := (*node64)(p)
		for i := range n.pad {
			n.pad[i] = pattern
		}
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Add(p, 8)), objSize-8)
	for i := range b {
		b[i] = 0xA5
	}
}

func liveBytes() uint64 { return nodes*objSize + chunks*chunkBytes }

// setLive grows or shrinks the live structure exactly as worker_pacegc.c does.
func setLive(target uint64) {
	for {
		next := liveBytes() + objSize
		if tailIndex == chunkWords {
			next += chunkBytes
		}
		if next > target {
			break
		}
		if tailIndex == chunkWords {
			c := new(chunk)
			if tailChunk == nil {
				headChunk, headIndex = c, 1
			} else {
				tailChunk[0] = unsafe.Pointer(c)
			}
			tailChunk, tailIndex = c, 1
			chunks++
		}
		p := newObj()
		fillPayload(p)
		tailChunk[tailIndex] = p
		tailIndex++
		nodes++
	}
	for liveBytes() > target && nodes > 0 {
		headChunk[headIndex] = nil
		headIndex++
		nodes--
		end := chunkWords
		if headChunk == tailChunk {
			end = tailIndex
		}
		if headIndex == end { // the head chunk is empty: drop it
			next := (*chunk)(headChunk[0])
			if headChunk == tailChunk {
				tailChunk, tailIndex = nil, chunkWords
			}
			headChunk, headIndex = next, 1
			chunks--
		}
	}
}

// churn allocates bytes/objSize garbage objects into the ring, writing one payload word into each (word 1: word 0
// is a pointer field in Go and must not hold an integer; objects of 8 bytes have no payload and get no write).
func churn(bytes uint64) uint64 {
	n := bytes / objSize
	if objType == nil {
		for i := uint64(0); i < n; i++ {
			o := new(node64)
			o.pad[0] = i
			ring[slot%ringSlots] = unsafe.Pointer(o)
			slot++
		}
	} else {
		for i := uint64(0); i < n; i++ {
			p := reflect.New(objType).UnsafePointer()
			if objSize >= 16 {
				*(*uint64)(unsafe.Add(p, 8)) = i
			}
			ring[slot%ringSlots] = p
			slot++
		}
	}
	return n * objSize
}

func percentile(sorted []uint64, p float64) string {
	if len(sorted) == 0 {
		return "na"
	}
	k := int(math.Ceil(p*float64(len(sorted)))) - 1 // nearest rank
	if k < 0 {
		k = 0
	}
	return strconv.FormatUint(sorted[k], 10)
}

func main() {
	o := parseArgs(os.Args[1:])
	objSize = o.objSize
	if objSize != 64 {
		fields := []reflect.StructField{{Name: "Next", Type: reflect.TypeOf(unsafe.Pointer(nil))}}
		if objSize > 8 {
			fields = append(fields, reflect.StructField{Name: "Pad",
				Type: reflect.ArrayOf(int(objSize-8), reflect.TypeOf(byte(0)))})
		}
		objType = reflect.StructOf(fields)
	}
	// Read the pacing settings the runtime took from GOGC / GOMEMLIMIT.
	cur := debug.SetGCPercent(100)
	debug.SetGCPercent(cur)
	gcPercent.Store(int64(cur))
	memoryLimit = debug.SetMemoryLimit(-1)

	gogc, limit := "off", "off"
	if cur >= 0 {
		gogc = strconv.Itoa(cur)
	}
	if memoryLimit != math.MaxInt64 {
		limit = strconv.FormatInt(memoryLimit, 10)
	}
	emit("start runtime=go pid=%d cpus=%d gogc=%s memory_limit=%s version=%s", os.Getpid(), runtime.GOMAXPROCS(0),
		gogc, limit, runtime.Version())

	if o.ballast > 0 {
		ballast = make([]byte, o.ballast) // never touched: fresh spans are not zeroed, so not resident
	}
	if o.tunerPct > 0 {
		tunerThreshold = o.tunerPct / 100 * float64(o.capBytes)
		armSentinel()
	}

	s := newSampler()
	stop, done := make(chan struct{}), make(chan struct{})
	go s.run(time.Duration(o.sampleMs)*time.Millisecond, stop, done)

	var churnTotal uint64
	for i, p := range o.phases {
		emit("phase n=%d live=%d churn=%d t_ms=%d", i+1, p.live, p.churn, ms())
		setLive(p.live)
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		c0 := time.Now()
		churnTotal += churn(p.churn)
		runtime.ReadMemStats(&m1)
		// gc_cpu: the GC CPU fraction of the churn, from the cumulative GCCPUFraction (GC CPU over GOMAXPROCS x
		// time since the program started) at both ends: (f1 x T1 - f0 x T0) / (T1 - T0), with T measured from t0
		// (set during package initialisation, a few ms after the runtime started: a small error over seconds).
		T0 := c0.Sub(t0).Seconds()
		T1 := time.Since(t0).Seconds()
		phaseCPU := 0.0
		if T1 > T0 {
			phaseCPU = (m1.GCCPUFraction*T1 - m0.GCCPUFraction*T0) / (T1 - T0)
		}
		emit("phasedone n=%d t_ms=%d churn_s=%.3f gc_cpu=%.4f", i+1, ms(), time.Since(c0).Seconds(), phaseCPU)
	}
	wall := time.Since(t0)
	close(stop)
	<-done
	s.collect(false)

	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	s.mu.Lock()
	sort.Slice(s.pauses, func(a, b int) bool { return s.pauses[a] < s.pauses[b] })
	pmax := "na"
	if len(s.pauses) > 0 {
		pmax = strconv.FormatUint(s.pauses[len(s.pauses)-1], 10)
	}
	emit("result wall_s=%.3f gc_cycles=%d gc_cpu_fraction=%.4f pause_p50_ns=%s pause_p99_ns=%s pause_max_ns=%s "+
		"churn_bytes=%d limiter_on_ns=%d peak_total=%d pauses_lost=%d",
		wall.Seconds(), m.NumGC, m.GCCPUFraction, percentile(s.pauses, 0.50), percentile(s.pauses, 0.99), pmax,
		churnTotal, s.limiterOn.Nanoseconds(), s.peakTotal, s.missed)
	s.mu.Unlock()
	runtime.KeepAlive(ballast)
	runtime.KeepAlive(headChunk)
}
