package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// maxChannelsPerPublish is Pusher's limit on channels in one trigger.
const maxChannelsPerPublish = 100

// runMessages runs fanout, channels and slow: connect and subscribe, publish
// through the REST API, wait for every connection to get every event.
func runMessages(ctx context.Context, o *Options, res *Result) error {
	run := runID()
	prefix := "hb-" + run + "-"
	perConn, streams := 1, o.Publishers
	slowN := 0
	switch o.Scenario {
	case ScenarioChannels:
		perConn, streams = o.ChannelsPerConn, 1
	case ScenarioSlow:
		slowN = o.Slow
	}
	res.Params.Events, res.Params.Publishers, res.Params.Rate, res.Params.Size = o.Events, o.Publishers, o.Rate, o.Size
	if o.Scenario == ScenarioChannels {
		res.Params.ChannelsPerConn = perConn
	}
	res.Params.Slow = slowN

	channelsOf := func(id int) []string {
		if o.Scenario != ScenarioChannels {
			return []string{prefix + "fanout"}
		}
		out := make([]string, perConn)
		for k := range out {
			out[k] = prefix + strconv.Itoa(id*perConn+k)
		}
		return out
	}

	// Publishers take the REST bases in turn: publisher k sends through
	// base k mod len(bases), all of its events in order.
	var rests []*restClient
	for _, base := range o.rests {
		rest, err := newRESTClient(base, o.AppID, o.Key, o.Secret, o.Publishers, 30*time.Second)
		if err != nil {
			return err
		}
		defer rest.close()
		rests = append(rests, rest)
	}
	p, err := newPool(o, o.Conns+slowN)
	if err != nil {
		return err
	}
	sk := &streamSink{perConn: perConn, streams: streams, prefix: prefix}
	spec := func(park bool, rcvbuf int) func(id int) dialSpec {
		return func(id int) dialSpec {
			return dialSpec{sk: sk, park: park, rcvbuf: rcvbuf, node: p.nodeOf(id), setup: func(c *conn) error {
				c.chanBase = id * perConn
				c.streams = make([]Stream, perConn*streams)
				return p.subscribe(c, channelsOf(id), "", false)
			}}
		}
	}

	prog := startProgress(o)
	defer prog.close()
	w := newProcWatch(o.pids)
	w.startIdx = w.sample()
	dialStart := time.Now()
	prog.set(p.dialStatus(o.Conns+slowN, dialStart))
	fast := p.dialAll(ctx, 0, o.Conns, spec(false, 0))
	var slow []*conn
	if slowN > 0 {
		slow = p.dialAll(ctx, o.Conns, slowN, spec(true, o.SlowRecvBuffer))
	}
	res.Connections = p.connResult(o.Conns+slowN, append(append([]*conn(nil), fast...), slow...), dialStart, time.Now())
	settle()
	w.connIdx = w.sample()
	defer p.shutdown(fast, slow)

	// Plan the publishes: which publisher sends what, in which order.
	jobs := make([][]pubJob, o.Publishers)
	var batches [][]string
	if o.Scenario == ScenarioChannels {
		all := o.Conns * perConn
		for lo := 0; lo < all; lo += maxChannelsPerPublish {
			var b []string
			for g := lo; g < min(all, lo+maxChannelsPerPublish); g++ {
				b = append(b, prefix+strconv.Itoa(g))
			}
			batches = append(batches, b)
		}
		for r := 0; r < o.Events; r++ {
			for b, chans := range batches {
				pub := b % o.Publishers
				jobs[pub] = append(jobs[pub], pubJob{key: b, mark: Mark{Stream: uint32(b), Seq: uint32(r)}, channels: chans})
			}
		}
	} else {
		ch := []string{prefix + "fanout"}
		for pub := range o.Publishers {
			n := o.Events / o.Publishers
			if pub < o.Events%o.Publishers {
				n++
			}
			for seq := range n {
				jobs[pub] = append(jobs[pub], pubJob{key: pub, mark: Mark{Stream: uint32(pub), Seq: uint32(seq)}, channels: ch})
			}
		}
	}
	planned := 0
	for _, js := range jobs {
		planned += len(js)
	}
	ps := &publishers{rests: rests, size: o.Size, rate: o.Rate}
	res.Publish = &PublishResult{Mode: "burst"}
	if o.Rate > 0 {
		res.Publish.Mode = "paced"
	}

	rw := &redisWatch{addr: o.RedisAddr}
	rw.begin(ctx)
	w.measureFrom = w.sample()
	pubStart := time.Now()
	prog.set(func() string {
		el := time.Since(pubStart).Seconds()
		u := p.sumUnique()
		return fmt.Sprintf("publishing: %d requests (%.0f/s), %d errors; delivered %d (%.0f/s), server closed %d",
			ps.requests.Load(), float64(ps.requests.Load())/el, ps.errors.Load(), u, float64(u)/el, p.closedCount())
	})
	if res.Connections.Established == 0 {
		res.Publish = nil
		res.Errors = append(res.Errors, p.errorSamples()...)
		w.measureTo = w.sample()
		res.Redis = rw.end()
		res.Server, res.ServerNodes, res.Client, _ = w.results(0, nil, 0, "")
		return fmt.Errorf("no connection could be established; nothing published")
	}
	ps.run(ctx, jobs)

	// What every established connection should now get.
	var expected uint64
	for _, c := range fast {
		if c == nil {
			continue
		}
		for k := range perConn {
			for s := range streams {
				total, failed := ps.sent(streamKey(o.Scenario, c.chanBase+k, s))
				expected += uint64(total) - uint64(len(failed))
			}
		}
	}
	complete := p.waitUnique(ctx, expected, o.Drain)
	w.measureTo = w.sample()
	res.Redis = rw.end()
	p.rd.close() // the readers are done: connection state may be read now

	d := &DeliveryResult{Expected: expected}
	for _, c := range fast {
		if c == nil {
			continue
		}
		d.Counts.Merge(c.counts)
		for k := range perConn {
			for s := range streams {
				total, failed := ps.sent(streamKey(o.Scenario, c.chanBase+k, s))
				d.Missing += c.streams[k*streams+s].Missing(total, failed)
			}
		}
	}
	p.finishDelivery(res, d, complete, pubStart)

	pubSecs := time.Unix(0, ps.lastDone.Load()).Sub(ps.started).Seconds()
	*res.Publish = PublishResult{Mode: res.Publish.Mode, Requests: ps.requests.Load(), Errors: ps.errors.Load(),
		ChannelEvents: ps.events.Load(), Seconds: pubSecs, Latency: ps.latency.Summary()}
	if len(rests) > 1 {
		res.Publish.Endpoints = min(len(rests), o.Publishers)
	}
	if pubSecs > 0 {
		res.Publish.PerSecond = float64(res.Publish.Requests) / pubSecs
	}
	res.Errors = append(res.Errors, ps.errorSamples()...)
	res.Redis.per(float64(res.Publish.ChannelEvents), "published event")

	if slowN > 0 {
		frame := int64(len(AppendData(nil, Mark{TS: time.Now().UnixNano(), Seq: uint32(o.Events)}, o.Size))) + int64(len(prefix)) + 60
		limit := 30 * time.Second
		if ctx.Err() != nil {
			limit = 2 * time.Second // out of time already: a quick look only
		}
		res.Slow = drainSlow(slow, min(o.Drain, 5*time.Second), limit)
		res.Slow.BytesPerConn = frame * int64(o.Events)
	}

	res.Connections.ClosedByServer = p.closedCount()
	res.Connections.PusherErrors = p.errorCount()
	res.Server, res.ServerNodes, res.Client, err = w.results(res.Connections.Established-slowN, res.Connections.PerNode, float64(d.Unique), "message")
	res.Errors = append(res.Errors, p.errorSamples()...)
	res.Complete = d.Complete && res.Publish.Errors == 0 && res.Publish.Requests == int64(planned) &&
		res.Connections.Failed == 0 && res.Connections.ClosedByServer == 0
	if res.Slow != nil {
		res.Complete = res.Complete && res.Slow.Closed4100+res.Slow.Dropped == res.Slow.Conns
	}
	return err
}

// streamKey maps a connection's channel and stream to the publish key whose
// events it receives: the publisher (fanout, slow), or the batch of 100
// channels that carries the channel (channels).
func streamKey(scenario string, channel, stream int) int {
	if scenario == ScenarioChannels {
		return channel / maxChannelsPerPublish
	}
	return stream
}

// drainSlow reads what the connections that never read were left with,
// to find out how the server treated them.
func drainSlow(conns []*conn, idle, limit time.Duration) *SlowResult {
	r := &SlowResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sk := &countSink{}
	for _, c := range conns {
		if c == nil {
			continue
		}
		r.Conns++
		wg.Add(1)
		go func() {
			defer wg.Done()
			outcome := drainOne(c, sk, idle, limit)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case outcome == "4100":
				r.Closed4100++
			case outcome == "open":
				r.StillOpen++
			case outcome == "dropped":
				r.Dropped++
			default:
				if r.ClosedOther == nil {
					r.ClosedOther = map[string]int{}
				}
				r.ClosedOther[outcome]++
			}
		}()
	}
	wg.Wait()
	r.Events = sk.n.Load()
	return r
}

// drainOne reads c until the server closes it (returning the close code, or
// "dropped" when no close frame came), or until nothing arrives for idle
// ("open").
func drainOne(c *conn, sk *countSink, idle, limit time.Duration) string {
	c.sk = sk
	sh := new(shard)
	buf := make([]byte, 64<<10)
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		c.nc.SetReadDeadline(time.Now().Add(idle))
		n, err := c.nc.Read(buf)
		if n > 0 {
			if ferr := c.feed(buf[:n], time.Now().UnixNano(), sh); ferr != nil {
				if code := c.closeCode.Load(); code != 0 {
					return strconv.Itoa(int(code))
				}
				return "dropped"
			}
		}
		if err != nil {
			if isTimeout(err) {
				return "open"
			}
			if code := c.closeCode.Load(); code != 0 {
				return strconv.Itoa(int(code))
			}
			return "dropped"
		}
	}
	return "open"
}
