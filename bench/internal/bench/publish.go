package bench

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// pubJob is one trigger request.
type pubJob struct {
	key      int  // failure bookkeeping: which stream (or channel batch) it belongs to
	mark     Mark // TS is filled in at send time
	channels []string
}

// publishers runs P goroutines, each sending its own jobs in order, one
// request at a time (so that a stream's events reach the server, and every
// subscriber, in order).
type publishers struct {
	rests []*restClient // publisher p sends through rests[p % len(rests)]
	size  int
	rate  float64 // requests per second over all publishers; 0: as fast as possible

	started   time.Time
	requests  atomic.Int64
	events    atomic.Int64 // channel events: requests × channels
	errors    atomic.Int64
	lastDone  atomic.Int64 // unix nanos
	latency   Histogram    // REST round trip
	failMu    sync.Mutex
	failed    map[int][]uint32 // by key: sequence numbers whose publish failed
	attempted map[int]uint32   // by key: one past the highest sequence number sent
	errSeen   map[string]int   // distinct error messages, counted
}

// run sends jobs[p] from publisher p and returns when all are sent or ctx
// ends.
func (ps *publishers) run(ctx context.Context, jobs [][]pubJob) {
	ps.failed = map[int][]uint32{}
	ps.attempted = map[int]uint32{}
	ps.errSeen = map[string]int{}
	ps.started = time.Now()
	var wg sync.WaitGroup
	for p := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps.publisher(ctx, jobs[p], p, len(jobs))
		}()
	}
	wg.Wait()
	ps.lastDone.Store(time.Now().UnixNano())
}

// publisher sends the jobs of publisher p of n. Paced, the n publishers
// take turns: request i of publisher p is due at (i·n + p) / rate.
func (ps *publishers) publisher(ctx context.Context, jobs []pubJob, p, n int) {
	var data, body []byte
	var interval time.Duration
	if ps.rate > 0 {
		interval = time.Duration(float64(time.Second) / ps.rate)
	}
	for i, j := range jobs {
		if ctx.Err() != nil {
			return
		}
		if interval > 0 {
			if d := time.Until(ps.started.Add(time.Duration(i*n+p) * interval)); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
		}
		start := time.Now()
		j.mark.TS = start.UnixNano()
		data = AppendData(data[:0], j.mark, ps.size)
		body = appendPublishBody(body[:0], EventName, data, j.channels...)
		err := ps.rests[p%len(ps.rests)].publish(ctx, body)
		ps.latency.Record(time.Since(start))
		ps.requests.Add(1)
		ps.failMu.Lock()
		ps.attempted[j.key] = max(ps.attempted[j.key], j.mark.Seq+1)
		ps.failMu.Unlock()
		if err != nil {
			ps.errors.Add(1)
			ps.failMu.Lock()
			ps.failed[j.key] = append(ps.failed[j.key], j.mark.Seq)
			msg := err.Error()
			if len(msg) > 120 { // error bodies quote what was signed: keep them groupable
				msg = msg[:120] + "…"
			}
			if len(ps.errSeen) < 10 || ps.errSeen[msg] > 0 {
				ps.errSeen[msg]++
			}
			ps.failMu.Unlock()
			continue
		}
		ps.events.Add(int64(len(j.channels)))
	}
}

// errorSamples lists the distinct publish errors with their counts.
func (ps *publishers) errorSamples() []string {
	var out []string
	for msg, n := range ps.errSeen {
		out = append(out, fmt.Sprintf("%dx publish: %s", n, msg))
	}
	sort.Strings(out)
	return out
}

// sent returns how many events of key were sent (successfully or not) and
// which of them failed. Only call it after run has returned.
func (ps *publishers) sent(key int) (total uint32, failed []uint32) {
	return ps.attempted[key], ps.failed[key]
}
