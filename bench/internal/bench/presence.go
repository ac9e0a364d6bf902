package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// runPresence churns presence channels: watchers join and stay; churners
// join and leave again and again, each join under a new user id
// "c<churner>-<cycle>", whose user_info carries the join time. Every
// watcher must see, for every churner of its channel, member_added then
// member_removed for each cycle, exactly once and in order.
func runPresence(ctx context.Context, o *Options, res *Result) error {
	run := runID()
	prefix := "presence-hb-" + run + "-"
	C, J := o.PresenceChannels, o.Churners
	res.Params.PresenceChannels, res.Params.Churners, res.Params.Cycles, res.Params.Rate = C, J, o.Cycles, o.Rate
	churnersOn := func(ch int) int { return (J - ch + C - 1) / C } // churners j with j % C == ch

	p, err := newPool(o, o.Conns+J)
	if err != nil {
		return err
	}
	leaveAt := make([]atomic.Int64, J*o.Cycles) // unsubscribe time of churner j's cycle r
	sk := &presenceSink{channels: C, cycles: o.Cycles, leaveAt: leaveAt}

	prog := startProgress(o)
	defer prog.close()
	w := newProcWatch(o.pids)
	w.startIdx = w.sample()
	dialStart := time.Now()
	prog.set(p.dialStatus(o.Conns+J, dialStart))
	// Over several nodes, the watchers of a channel (ids ch, ch+C, ch+2C, …)
	// and its churners take the nodes in turn, so that every member event
	// crosses from one node to the others.
	watchers := p.dialAll(ctx, 0, o.Conns, func(id int) dialSpec {
		return dialSpec{sk: sk, node: (id / C) % o.nodes(), setup: func(c *conn) error {
			ch := id % C
			c.chanBase = ch
			c.streams = make([]Stream, churnersOn(ch))
			return p.subscribe(c, []string{prefix + strconv.Itoa(ch)}, `{"user_id":"w`+strconv.Itoa(id)+`"}`, true)
		}}
	})
	churners := p.dialAll(ctx, o.Conns, J, func(id int) dialSpec {
		return dialSpec{sk: sk, node: ((id - o.Conns) / C) % o.nodes(), setup: func(c *conn) error {
			c.subOK = make(chan bool, 1)
			return nil
		}}
	})
	res.Connections = p.connResult(o.Conns+J, append(append([]*conn(nil), watchers...), churners...), dialStart, time.Now())
	settle()
	w.connIdx = w.sample()
	defer p.shutdown(watchers, churners)

	// Churn.
	var joins, joinErrs atomic.Int64
	var joinLat Histogram
	failed := make([][]uint32, J) // by churner: member event seqs that may not come
	attempted := make([]uint32, J)
	var interval time.Duration
	if o.Rate > 0 {
		interval = time.Duration(float64(time.Second) / o.Rate)
	}
	rw := &redisWatch{addr: o.RedisAddr}
	rw.begin(ctx)
	w.measureFrom = w.sample()
	churnStart := time.Now()
	prog.set(func() string {
		el := time.Since(churnStart).Seconds()
		return fmt.Sprintf("churning: %d joins (%.0f/s), %d failed; member events %d, server closed %d",
			joins.Load(), float64(joins.Load())/el, joinErrs.Load(), p.sumUnique(), p.closedCount())
	})
	var wg sync.WaitGroup
	for j, c := range churners {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			channel := prefix + strconv.Itoa(j%C)
			var msg []byte
			for r := 0; r < o.Cycles && ctx.Err() == nil; r++ {
				if interval > 0 {
					at := churnStart.Add(time.Duration(r*J+j) * interval)
					if d := time.Until(at); d > 0 {
						select {
						case <-ctx.Done():
							return
						case <-time.After(d):
						}
					}
				}
				select { // a late answer to an earlier cycle
				case <-c.subOK:
				default:
				}
				t0 := time.Now()
				data := `{"user_id":"c` + strconv.Itoa(j) + "-" + strconv.Itoa(r) + `","user_info":{"hb_t":` + strconv.FormatInt(t0.UnixNano(), 10) + `}}`
				msg = appendSubscribe(msg[:0], channel, channelToken(o.Key, o.Secret, c.socketID, channel, data), data)
				attempted[j] = uint32(2*r + 2)
				ok := c.writeMessage(msg) == nil
				if ok {
					select {
					case ok = <-c.subOK:
					case <-time.After(o.DialTimeout):
						ok = false
					case <-ctx.Done():
						ok = false
					}
				}
				if ok {
					joinLat.Record(time.Since(t0))
					joins.Add(1)
				} else {
					joinErrs.Add(1)
					failed[j] = append(failed[j], uint32(2*r), uint32(2*r+1))
				}
				leaveAt[j*o.Cycles+r].Store(time.Now().UnixNano())
				if c.writeMessage(appendUnsubscribe(msg[:0], channel)) != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	churnSecs := time.Since(churnStart).Seconds()

	var expected uint64
	for _, c := range watchers {
		if c == nil {
			continue
		}
		for l := range c.streams {
			j := l*C + c.chanBase
			expected += uint64(attempted[j]) - uint64(len(failed[j]))
		}
	}
	complete := p.waitUnique(ctx, expected, o.Drain)
	w.measureTo = w.sample()
	res.Redis = rw.end()
	res.Redis.per(float64(joins.Load()), "join")
	p.rd.close()

	d := &DeliveryResult{Expected: expected}
	for _, c := range watchers {
		if c == nil {
			continue
		}
		d.Counts.Merge(c.counts)
		for l := range c.streams {
			j := l*C + c.chanBase
			d.Missing += c.streams[l].Missing(attempted[j], failed[j])
		}
	}
	p.finishDelivery(res, d, complete, churnStart)
	removed := new(Histogram)
	for _, sh := range p.shards {
		removed.Merge(&sh.lat2)
	}
	res.Presence = &PresenceResult{Joins: joins.Load(), JoinErrors: joinErrs.Load(),
		JoinLatency: joinLat.Summary(), RemovedLatency: removed.Summary()}
	if churnSecs > 0 {
		res.Presence.JoinsPerSecond = float64(joins.Load()) / churnSecs
	}
	res.Connections.ClosedByServer = p.closedCount()
	res.Connections.PusherErrors = p.errorCount()
	res.Server, res.ServerNodes, res.Client, err = w.results(res.Connections.Established, res.Connections.PerNode, float64(d.Unique), "member event")
	res.Errors = append(res.Errors, p.errorSamples()...)
	res.Complete = d.Complete && joinErrs.Load() == 0 && res.Connections.Failed == 0 && res.Connections.ClosedByServer == 0
	return err
}

// presenceSink checks the member events watchers receive.
type presenceSink struct {
	channels int
	cycles   int
	leaveAt  []atomic.Int64
}

func (s *presenceSink) message(c *conn, event, msg []byte, now int64, sh *shard) {
	removed := false
	switch string(event) {
	case evMemberAdded:
	case evMemberRemoved:
		removed = true
	default:
		return
	}
	if c.streams == nil {
		return // a churner: it hears about others too, but checks nothing
	}
	j, r, ok := parseChurner(valueOf(msg, "user_id"))
	if !ok {
		return // a watcher joining
	}
	if j%s.channels != c.chanBase || j/s.channels >= len(c.streams) || r >= s.cycles {
		c.counts.Unexpected++
		return
	}
	seq := uint32(2 * r)
	if removed {
		seq++
	}
	v := c.streams[j/s.channels].Observe(seq)
	c.counts.Add(v)
	if v == Duplicate {
		return
	}
	sh.unique.Add(1)
	if now > sh.lastRecv.Load() {
		sh.lastRecv.Store(now)
	}
	if removed {
		if t := s.leaveAt[j*s.cycles+r].Load(); t > 0 {
			sh.lat2.Record(time.Duration(now - t))
		}
		return
	}
	if ts, err := strconv.ParseInt(string(valueOf(msg, "hb_t")), 10, 64); err == nil {
		sh.lat.Record(time.Duration(now - ts))
	}
}

// parseChurner parses a churner's user id, "c<churner>-<cycle>".
func parseChurner(id []byte) (j, r int, ok bool) {
	if len(id) < 4 || id[0] != 'c' {
		return 0, 0, false
	}
	a, rest, ok1 := cutUint(id[1:])
	if !ok1 || len(rest) < 2 || rest[0] != '-' {
		return 0, 0, false
	}
	b, rest, ok2 := cutUint(rest[1:])
	if !ok2 || len(rest) != 0 || a > 1<<31 || b > 1<<31 {
		return 0, 0, false
	}
	return int(a), int(b), true
}
