package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// ErrUnknownScenario is returned by Run for a scenario it does not know.
var ErrUnknownScenario = errors.New("unknown scenario")

func numCPU() int { return runtime.GOMAXPROCS(0) }

// settle returns the garbage of the connection phase (handshake buffers,
// dialing goroutines' stacks) to the system, so that what follows, and the
// memory per connection reported, reflect only what connections keep.
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

// Run runs one scenario to the end, or until o.Timeout or ctx, and returns
// what it measured. A run that ends early still returns its result, marked
// timed out or incomplete; the error is for runs that could not start.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	need := o.Conns + 64
	switch o.Scenario {
	case ScenarioSlow:
		need += o.Slow
	case ScenarioPresence:
		need += o.Churners
	case ScenarioREST:
		need += o.Publishers
	}
	if err := raiseFileLimit(need); err != nil {
		return nil, err
	}
	if o.RedisAddr != "" {
		if _, err := ReadRedisStats(ctx, o.RedisAddr); err != nil {
			return nil, fmt.Errorf("--redis-addr: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	res := &Result{
		Scenario: o.Scenario, Label: o.Label, Target: o.URL, Reader: o.Reader, Started: time.Now(),
		Params: Params{Conns: o.Conns, Concurrency: o.Concurrency},
	}
	var err error
	switch o.Scenario {
	case ScenarioFanout, ScenarioChannels, ScenarioSlow:
		err = runMessages(ctx, &o, res)
	case ScenarioPresence:
		err = runPresence(ctx, &o, res)
	case ScenarioConnect, ScenarioIdle:
		err = runConnections(ctx, &o, res)
	case ScenarioREST:
		err = runREST(ctx, &o, res)
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownScenario, o.Scenario)
	}
	res.Seconds = time.Since(res.Started).Seconds()
	if ctx.Err() != nil && !errors.Is(context.Cause(ctx), context.Canceled) {
		res.TimedOut = true
		res.Complete = false
	}
	return res, err
}

func runID() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// procWatch samples the server's (or every node's) and the benchmark's own
// /proc entries at the phase boundaries of a run.
type procWatch struct {
	pids                   []int
	server                 [][]ProcSample // by pid
	self                   []ProcSample
	serverErr              error
	startIdx, connIdx      int
	measureFrom, measureTo int
}

func newProcWatch(pids []int) *procWatch {
	return &procWatch{pids: pids, server: make([][]ProcSample, len(pids))}
}

func (w *procWatch) sample() int {
	if w.serverErr == nil {
		for i, pid := range w.pids {
			s, err := ReadProc(pid)
			if err != nil {
				w.serverErr = fmt.Errorf("server pid %d: %w", pid, err)
				break
			}
			w.server[i] = append(w.server[i], s)
		}
	}
	s, _ := ReadProc(os.Getpid())
	w.self = append(w.self, s)
	return len(w.self) - 1
}

// results reports CPU over the measured phase [from, to] and memory at the
// start, after connecting, and at the end. With several server processes,
// server is their sum and nodes has each one; perNode, when it has one
// count per process, is the connections each held (for memory per
// connection; otherwise they are taken as spread evenly).
func (w *procWatch) results(conns int, perNode []int, units float64, unit string) (server *ProcResult, nodes []ProcResult, self ProcResult, err error) {
	build := func(pid int, s []ProcSample, conns int) ProcResult {
		if len(s) == 0 {
			return ProcResult{PID: pid}
		}
		r := ProcResult{PID: pid}
		at := func(i int) ProcSample { return s[min(i, len(s)-1)] }
		r.CPUSeconds = (at(w.measureTo).CPU - at(w.measureFrom).CPU).Seconds()
		r.RSSStart, r.RSSConnected, r.RSSEnd = at(w.startIdx).RSS, at(w.connIdx).RSS, s[len(s)-1].RSS
		if conns > 0 {
			r.RSSPerConn = float64(r.RSSConnected-r.RSSStart) / float64(conns)
		}
		return r
	}
	perUnit := func(r *ProcResult) {
		if units > 0 {
			r.CPUPerUnitUS = r.CPUSeconds * 1e6 / units
			r.Unit = unit
		}
	}
	self = build(os.Getpid(), w.self, conns)
	perUnit(&self)
	if len(w.pids) == 0 {
		return nil, nil, self, nil
	}
	if w.serverErr != nil {
		return nil, nil, self, w.serverErr
	}
	if len(w.pids) == 1 {
		r := build(w.pids[0], w.server[0], conns)
		perUnit(&r)
		return &r, nil, self, nil
	}
	sum := &ProcResult{PIDs: w.pids}
	for i, pid := range w.pids {
		n := conns / len(w.pids)
		if len(perNode) == len(w.pids) {
			n = perNode[i]
		}
		r := build(pid, w.server[i], n)
		// Each node's CPU over every delivered unit: the nodes' figures
		// add up to the cluster's.
		perUnit(&r)
		nodes = append(nodes, r)
		sum.CPUSeconds += r.CPUSeconds
		sum.RSSStart += r.RSSStart
		sum.RSSConnected += r.RSSConnected
		sum.RSSEnd += r.RSSEnd
	}
	perUnit(sum)
	if conns > 0 {
		sum.RSSPerConn = float64(sum.RSSConnected-sum.RSSStart) / float64(conns)
	}
	return sum, nodes, self, nil
}

// progress prints a status line every interval until stopped.
type progress struct {
	o      *Options
	start  time.Time
	mu     sync.Mutex
	status func() string
	stop   chan struct{}
	done   chan struct{}
}

func startProgress(o *Options) *progress {
	p := &progress{o: o, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		if o.Progress <= 0 {
			<-p.stop
			return
		}
		t := time.NewTicker(o.Progress)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.print()
			}
		}
	}()
	return p
}

// set replaces the status line's source, printing where the previous
// phase ended.
func (p *progress) set(f func() string) {
	p.print()
	p.mu.Lock()
	p.status = f
	p.mu.Unlock()
}

func (p *progress) print() {
	p.mu.Lock()
	f := p.status
	p.mu.Unlock()
	if f == nil || p.o.Progress <= 0 {
		return
	}
	fmt.Fprintf(p.o.Log, "[%6.1fs] %s %s\n", time.Since(p.start).Seconds(), p.o.Scenario, f())
}

func (p *progress) close() {
	close(p.stop)
	<-p.done
	p.print()
}

// dialStatus is the progress line of a connection phase.
func (p *pool) dialStatus(target int, since time.Time) func() string {
	return func() string {
		n := p.established.Load()
		return fmt.Sprintf("connecting: %d/%d established (%.0f/s), %d failed", n, target,
			float64(n)/time.Since(since).Seconds(), p.failed.Load())
	}
}

func (p *pool) connResult(target int, established []*conn, since time.Time, until time.Time) ConnResult {
	n := 0
	for _, c := range established {
		if c != nil {
			n++
		}
	}
	secs := until.Sub(since).Seconds()
	r := ConnResult{Target: target, Established: n, Failed: target - n, Attempts: p.attempts.Load(),
		Seconds: secs, LocalAddrs: len(p.addrs), Handshake: p.handshake.Summary(), PerNode: p.perNode()}
	if secs > 0 {
		r.PerSecond = float64(n) / secs
	}
	return r
}

func (p *pool) sumUnique() uint64 {
	var n uint64
	for _, sh := range p.shards {
		n += sh.unique.Load()
	}
	return n
}

func (p *pool) lastReceipt() int64 {
	var t int64
	for _, sh := range p.shards {
		t = max(t, sh.lastRecv.Load())
	}
	return t
}

func (p *pool) latency() *Histogram {
	h := new(Histogram)
	for _, sh := range p.shards {
		h.Merge(&sh.lat)
	}
	return h
}

// waitUnique waits until the readers have seen want first receipts, nothing
// new has arrived for the drain period, or ctx ends. It reports whether
// want was reached.
func (p *pool) waitUnique(ctx context.Context, want uint64, drain time.Duration) bool {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	last, lastChange := p.sumUnique(), time.Now()
	for {
		n := p.sumUnique()
		if n >= want {
			return true
		}
		if n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) > drain {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}
