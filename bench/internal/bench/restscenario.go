package bench

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// warmupEvent names the one request each publisher sends before the
// measured phase; subscribers ignore it.
const warmupEvent = "herald-bench-warmup"

// runREST runs rest: signed trigger requests, each publisher on a
// keep-alive connection of its own sending one request at a time, as fast
// as the server answers or paced; and, when asked for, subscribers of the
// one channel, each of which must get every event exactly once and in
// order (one stream per publisher).
func runREST(ctx context.Context, o *Options, res *Result) error {
	prefix := "hb-" + runID() + "-"
	channel := prefix + "rest"
	res.Params.Requests, res.Params.Batch = o.Requests, o.Batch
	res.Params.Publishers, res.Params.Rate, res.Params.Size = o.Publishers, o.Rate, o.Size

	tcs := make([]*triggerConn, o.Publishers)
	for i := range tcs {
		// Publisher i sends through REST base i mod their number.
		tc, err := newTriggerConn(o.rests[i%len(o.rests)], o.AppID, o.Key, o.Secret, o.Batch > 1, 30*time.Second)
		if err != nil {
			return err
		}
		defer tc.close()
		tcs[i] = tc
	}

	prog := startProgress(o)
	defer prog.close()
	w := newProcWatch(o.pids)
	w.startIdx = w.sample()
	var p *pool
	var subs []*conn
	if o.Conns > 0 {
		var err error
		if p, err = newPool(o, o.Conns); err != nil {
			return err
		}
		sk := &streamSink{perConn: 1, streams: o.Publishers, prefix: prefix}
		spec := func(id int) dialSpec {
			return dialSpec{sk: sk, node: p.nodeOf(id), setup: func(c *conn) error {
				c.streams = make([]Stream, o.Publishers)
				return p.subscribe(c, []string{channel}, "", false)
			}}
		}
		dialStart := time.Now()
		prog.set(p.dialStatus(o.Conns, dialStart))
		subs = p.dialAll(ctx, 0, o.Conns, spec)
		res.Connections = p.connResult(o.Conns, subs, dialStart, time.Now())
		settle()
		defer p.shutdown(subs)
	}
	w.connIdx = w.sample()

	rp := &restPublishers{batch: o.Batch, size: o.Size, rate: o.Rate, channel: channel, pubs: make([]restPub, o.Publishers)}
	for i := range rp.pubs {
		n := o.Requests / o.Publishers
		if i < o.Requests%o.Publishers {
			n++
		}
		rp.pubs[i].requests = n
	}
	res.REST = &RESTResult{Endpoint: tcs[0].path, Batch: o.Batch}
	if len(o.rests) > 1 {
		res.REST.Endpoints = min(len(o.rests), o.Publishers)
	}
	fail := func(err error) error {
		res.Errors = append(res.Errors, p.errorSamplesOrNil()...)
		w.measureFrom = w.sample()
		w.measureTo = w.measureFrom
		res.Server, res.ServerNodes, res.Client, _ = w.results(0, nil, 0, "")
		return err
	}
	if o.Conns > 0 && res.Connections.Established == 0 {
		return fail(errors.New("no subscriber could be connected; nothing published"))
	}
	// Every publisher's connection is dialed, and the endpoint tried,
	// before the measured phase: a refusal (a wrong secret, a server
	// without batch_events) ends the run at once, not after thousands of
	// requests, and no dial is counted in the figures.
	prog.set(func() string { return "warming up: one request per publisher" })
	if err := rp.warmUp(ctx, tcs); err != nil {
		return fail(err)
	}

	rw := &redisWatch{addr: o.RedisAddr}
	rw.begin(ctx)
	w.measureFrom = w.sample()
	prog.set(func() string {
		el := time.Since(rp.started).Seconds()
		line := fmt.Sprintf("publishing: %d/%d requests (%.0f/s), %d errors", rp.requests.Load(), o.Requests,
			float64(rp.requests.Load())/el, rp.errors.Load())
		if p != nil {
			u := p.sumUnique()
			line += fmt.Sprintf("; delivered %d (%.0f/s), server closed %d", u, float64(u)/el, p.closedCount())
		}
		return line
	})
	rp.run(ctx, tcs)

	complete := true
	var d *DeliveryResult
	if p != nil {
		// What every established subscriber should now get: each
		// publisher's events, less those whose request failed.
		var perSub uint64
		for i := range rp.pubs {
			perSub += uint64(rp.pubs[i].sent) - uint64(len(rp.pubs[i].failed))
		}
		d = &DeliveryResult{Expected: perSub * uint64(res.Connections.Established)}
		complete = p.waitUnique(ctx, d.Expected, o.Drain)
	}
	w.measureTo = w.sample()
	res.Redis = rw.end()

	r := res.REST
	r.Requests, r.Errors, r.Events = rp.requests.Load(), rp.errors.Load(), rp.events.Load()
	r.Seconds = time.Unix(0, rp.lastDone.Load()).Sub(rp.started).Seconds()
	if r.Seconds > 0 {
		r.RequestsPerSecond = float64(r.Requests) / r.Seconds
		r.EventsPerSecond = float64(r.Events) / r.Seconds
	}
	r.Latency = rp.latency.Summary()
	res.Errors = append(res.Errors, rp.errorSamples()...)
	res.Redis.per(float64(r.Events), "published event")

	if p != nil {
		p.rd.close() // the readers are done: connection state may be read now
		for _, c := range subs {
			if c == nil {
				continue
			}
			d.Counts.Merge(c.counts)
			for i := range rp.pubs {
				d.Missing += c.streams[i].Missing(rp.pubs[i].sent, rp.pubs[i].failed)
			}
		}
		p.finishDelivery(res, d, complete, rp.started)
		res.Connections.ClosedByServer = p.closedCount()
		res.Connections.PusherErrors = p.errorCount()
		res.Errors = append(res.Errors, p.errorSamples()...)
	}

	var err error
	res.Server, res.ServerNodes, res.Client, err = w.results(res.Connections.Established, res.Connections.PerNode, float64(r.Requests), "request")
	if r.Requests > 0 {
		events := float64(r.Requests) * float64(o.Batch)
		if s := res.Server; s != nil {
			r.ServerCPUPerRequestUS = s.CPUSeconds * 1e6 / float64(r.Requests)
			r.ServerCPUPerEventUS = s.CPUSeconds * 1e6 / events
		}
		r.ClientCPUPerRequestUS = res.Client.CPUSeconds * 1e6 / float64(r.Requests)
		r.ClientCPUPerEventUS = res.Client.CPUSeconds * 1e6 / events
	}
	res.Complete = r.Errors == 0 && r.Requests == int64(o.Requests) &&
		res.Connections.Failed == 0 && res.Connections.ClosedByServer == 0 && (d == nil || d.Complete)
	return err
}

// errorSamplesOrNil is errorSamples of a pool that may not exist.
func (p *pool) errorSamplesOrNil() []string {
	if p == nil {
		return nil
	}
	return p.errorSamples()
}

// restPublishers sends the rest scenario's requests: publisher i sends
// pubs[i].requests requests on connection i, one at a time, so that its
// events (stream i, sequence numbers 0, 1, 2, …) reach the server, and
// every subscriber, in order.
type restPublishers struct {
	batch, size int
	rate        float64 // requests per second over all publishers; 0: as fast as possible
	channel     string
	pubs        []restPub

	started  time.Time
	requests atomic.Int64
	errors   atomic.Int64
	events   atomic.Int64 // in requests answered 200
	lastDone atomic.Int64 // unix nanos
	latency  Histogram

	errMu   sync.Mutex
	errSeen map[string]int // distinct error messages, counted
}

// restPub is one publisher's plan and record; it belongs to the
// publisher's goroutine until run returns.
type restPub struct {
	requests int
	sent     uint32   // events in the requests sent, answered or not
	failed   []uint32 // sequence numbers of the events whose request failed
}

// warmUp sends one request of warmupEvent events from every publisher at
// once, and fails if any is refused.
func (rp *restPublishers) warmUp(ctx context.Context, tcs []*triggerConn) error {
	errs := make([]error, len(tcs))
	var wg sync.WaitGroup
	for i, tc := range tcs {
		wg.Go(func() {
			b := newTriggerBody(warmupEvent, rp.channel, rp.batch > 1)
			errs[i] = tc.send(ctx, b.build(uint32(i), 0, rp.batch, time.Now().UnixNano(), rp.size), time.Now())
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			continue
		}
		if rp.batch > 1 && isNotFound(err) {
			return fmt.Errorf("warm-up request refused: %w (the server has no batch_events: use --batch 1)", err)
		}
		return fmt.Errorf("warm-up request refused: %w", err)
	}
	return nil
}

// run sends every publisher's requests and returns when all are sent or
// ctx ends.
func (rp *restPublishers) run(ctx context.Context, tcs []*triggerConn) {
	rp.errSeen = map[string]int{}
	rp.started = time.Now()
	var wg sync.WaitGroup
	for i := range rp.pubs {
		wg.Go(func() { rp.publisher(ctx, tcs[i], i) })
	}
	wg.Wait()
	rp.lastDone.Store(time.Now().UnixNano())
}

// publisher sends publisher i's requests. Paced, the publishers take
// turns: request k of publisher i is due at (k·n + i) / rate.
func (rp *restPublishers) publisher(ctx context.Context, tc *triggerConn, i int) {
	pub := &rp.pubs[i]
	n := len(rp.pubs)
	b := newTriggerBody(EventName, rp.channel, rp.batch > 1)
	var interval time.Duration
	if rp.rate > 0 {
		interval = time.Duration(float64(time.Second) / rp.rate)
	}
	for k := range pub.requests {
		if ctx.Err() != nil {
			return
		}
		if interval > 0 {
			if d := time.Until(rp.started.Add(time.Duration(k*n+i) * interval)); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
		}
		seq := pub.sent
		start := time.Now()
		err := tc.send(ctx, b.build(uint32(i), seq, rp.batch, start.UnixNano(), rp.size), start)
		rp.latency.Record(time.Since(start))
		pub.sent += uint32(rp.batch)
		rp.requests.Add(1)
		if err == nil {
			rp.events.Add(int64(rp.batch))
			continue
		}
		rp.errors.Add(1)
		for j := range uint32(rp.batch) {
			pub.failed = append(pub.failed, seq+j)
		}
		msg := err.Error()
		if len(msg) > 160 {
			msg = msg[:160] + "…"
		}
		rp.errMu.Lock()
		if len(rp.errSeen) < 10 || rp.errSeen[msg] > 0 {
			rp.errSeen[msg]++
		}
		rp.errMu.Unlock()
	}
}

// errorSamples lists the distinct request errors with their counts.
func (rp *restPublishers) errorSamples() []string {
	rp.errMu.Lock()
	defer rp.errMu.Unlock()
	var out []string
	for msg, n := range rp.errSeen {
		out = append(out, fmt.Sprintf("%dx rest: %s", n, msg))
	}
	sort.Strings(out)
	return out
}

// triggerBody builds a publisher's request bodies in buffers it keeps:
// {"name","channel","data"} for one event, {"batch":[…]} for several.
type triggerBody struct {
	head  []byte // {"name":…,"channel":…,"data":
	batch bool
	data  []byte
	body  []byte
}

func newTriggerBody(name, channel string, batch bool) *triggerBody {
	h := append([]byte(`{"name":`), appendJSONString(nil, name)...)
	h = append(h, `,"channel":`...)
	h = appendJSONString(h, channel)
	h = append(h, `,"data":`...)
	return &triggerBody{head: h, batch: batch}
}

// build returns the body of n events of stream, sequence numbers seq to
// seq+n-1, published at ts (unix nanoseconds), each with size bytes of
// data. The body is valid until the next call.
func (b *triggerBody) build(stream, seq uint32, n int, ts int64, size int) []byte {
	body := b.body[:0]
	if b.batch {
		body = append(body, `{"batch":[`...)
	}
	for j := range n {
		if j > 0 {
			body = append(body, ',')
		}
		body = append(body, b.head...)
		b.data = AppendData(b.data[:0], Mark{Stream: stream, Seq: seq + uint32(j), TS: ts}, size)
		body = appendJSONString(body, b.data)
		body = append(body, '}')
	}
	if b.batch {
		body = append(body, "]}"...)
	}
	b.body = body
	return body
}
