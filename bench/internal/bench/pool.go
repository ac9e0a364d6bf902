package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
)

// Dial errors.
var (
	ErrHandshake    = errors.New("no pusher:connection_established")
	ErrSubscription = errors.New("subscription failed")
)

// pool dials connections and hands them to the reader. Its counters feed
// the progress lines.
type pool struct {
	o       *Options
	targets []target // by node
	addrs   []net.IP
	shards  []*shard
	rd      reader

	nodeConns []atomic.Int64 // established connections by node

	attempts    atomic.Int64
	established atomic.Int64
	failed      atomic.Int64 // dials that failed after every retry
	handshake   Histogram    // dial start → connection_established

	errMu   sync.Mutex
	errSeen map[string]int
}

func newPool(o *Options, total int) (*pool, error) {
	addrs, err := localAddrs(o.LocalAddrs, o.urls[0], total)
	if err != nil {
		return nil, err
	}
	p := &pool{o: o, addrs: addrs, errSeen: map[string]int{}, nodeConns: make([]atomic.Int64, o.nodes())}
	for _, base := range o.urls {
		p.targets = append(p.targets, target{wsURL: o.wsURLOf(base)})
	}
	n := 2 * max(1, numCPU())
	for range n {
		p.shards = append(p.shards, new(shard))
	}
	switch o.Reader {
	case "epoll":
		r, err := newEpollReader(numCPU(), total, p.shards)
		if err != nil {
			return nil, err
		}
		p.rd = r
		for i := range p.targets {
			if t, err := newRawTarget(p.targets[i].wsURL); err == nil {
				p.targets[i].raw = t
			}
		}
	default:
		p.rd = newGoroutineReader(p.shards, 4096)
	}
	return p, nil
}

// target is one node's connection URL.
type target struct {
	wsURL string
	raw   *rawTarget // the raw dialer's, with the epoll reader on ws:// URLs
}

// nodeOf spreads connections over the nodes round-robin by id.
func (p *pool) nodeOf(id int) int { return id % len(p.targets) }

// perNode is the established connections by node, nil for one node.
func (p *pool) perNode() []int {
	if len(p.nodeConns) < 2 {
		return nil
	}
	out := make([]int, len(p.nodeConns))
	for i := range out {
		out[i] = int(p.nodeConns[i].Load())
	}
	return out
}

// noteError keeps a tally of distinct error messages for the report.
func (p *pool) noteError(err error) {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	p.errMu.Lock()
	if len(p.errSeen) < 20 || p.errSeen[msg] > 0 {
		p.errSeen[msg]++
	}
	p.errMu.Unlock()
}

func (p *pool) errorSamples() []string {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	var out []string
	for msg, n := range p.errSeen {
		out = append(out, fmt.Sprintf("%dx dial: %s", n, msg))
	}
	sort.Strings(out)
	return out
}

// dialSpec says how to prepare one connection.
type dialSpec struct {
	sk sink
	// setup runs once the socket id is known, before the hand-over: set up
	// the connection's scenario state and subscribe.
	setup func(c *conn) error
	// park keeps the connection away from the reader (slow clients).
	park   bool
	rcvbuf int
	// node is the index of the WebSocket base to dial (see pool.nodeOf).
	node int
}

// open dials connection id, waits for pusher:connection_established, runs
// the spec's setup and hands the connection to the reader.
func (p *pool) open(ctx context.Context, id int, spec dialSpec) (*conn, error) {
	t := &p.targets[spec.node]
	if t.raw != nil && spec.setup == nil && !spec.park && spec.rcvbuf == 0 && p.o.Protocol != ProtocolCentrifugo {
		return p.openRaw(ctx, id, t.raw, spec)
	}
	start := time.Now()
	var la net.Addr
	if len(p.addrs) > 0 {
		la = &net.TCPAddr{IP: p.addrs[id%len(p.addrs)]}
	}
	d := ws.Dialer{
		Timeout: p.o.DialTimeout,
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			// No TCP keep-alive: the server pings over WebSocket, and the
			// setsockopt calls would be a tenth of the tool's dial cost.
			nd := net.Dialer{LocalAddr: la, KeepAlive: -1}
			if spec.rcvbuf > 0 || la != nil {
				nd.Control = func(_, _ string, rc syscall.RawConn) error {
					var serr error
					err := rc.Control(func(fd uintptr) {
						if la != nil {
							// See rawTarget.connect.
							serr = bindAddressNoPort(fd)
						}
						if serr == nil && spec.rcvbuf > 0 {
							serr = setRecvBuffer(fd, spec.rcvbuf)
						}
					})
					if err != nil {
						return err
					}
					return serr
				}
			}
			return nd.DialContext(ctx, network, addr)
		},
	}
	nc, br, _, err := d.Dial(ctx, t.wsURL)
	if err != nil {
		return nil, err
	}
	c := &conn{id: id, nc: nc, fd: -1, sk: spec.sk, centrifugo: p.o.Protocol == ProtocolCentrifugo}
	if c.centrifugo {
		tok := connectToken(p.o.JWTSecret, "hb-"+strconv.Itoa(id), time.Now().Add(time.Hour))
		if err := c.writeMessage(appendCentrifugoConnect(nil, c.nextID(), tok)); err != nil {
			nc.Close()
			return nil, err
		}
	}
	sh := p.shards[id%len(p.shards)]
	if br != nil {
		early, _ := br.Peek(br.Buffered())
		err := c.feed(bytes.Clone(early), start.UnixNano(), sh)
		ws.PutReader(br)
		if err != nil {
			c.close(true)
			return nil, err
		}
	}
	deadline := start.Add(p.o.DialTimeout)
	if err := c.await(deadline, sh, func() bool { return c.socketID != "" || c.subFailed != nil }); err != nil {
		c.close(true)
		return nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	if c.socketID == "" {
		c.close(true)
		return nil, fmt.Errorf("%w: %s", ErrHandshake, c.subFailed)
	}
	p.handshake.Record(time.Since(start))
	if spec.setup != nil {
		if err := spec.setup(c); err != nil {
			c.close(true)
			return nil, err
		}
	}
	c.nc.SetDeadline(time.Time{})
	if !spec.park {
		if err := p.rd.adopt(c); err != nil {
			c.close(true)
			return nil, err
		}
	}
	return c, nil
}

// subscribe sends one pusher:subscribe per channel and waits until all are
// confirmed. auth, when not nil, signs private and presence channels.
func (p *pool) subscribe(c *conn, channels []string, channelData string, signed bool) error {
	var msg []byte
	for _, ch := range channels {
		if c.centrifugo {
			if signed {
				return fmt.Errorf("%w: signed channels need subscription tokens, which centrifugo clients of herald-bench do not mint", ErrSubscription)
			}
			msg = appendCentrifugoSubscribe(msg[:0], c.nextID(), ch)
			if err := c.writeMessage(msg); err != nil {
				return err
			}
			continue
		}
		token := ""
		if signed {
			token = channelToken(p.o.Key, p.o.Secret, c.socketID, ch, channelData)
		}
		msg = appendSubscribe(msg[:0], ch, token, channelData)
		if err := c.writeMessage(msg); err != nil {
			return err
		}
	}
	want := c.subscribed + len(channels)
	sh := p.shards[c.id%len(p.shards)]
	err := c.await(time.Now().Add(p.o.DialTimeout), sh, func() bool { return c.subscribed >= want || c.subFailed != nil })
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSubscription, err)
	}
	if c.subscribed < want {
		return fmt.Errorf("%w: %s", ErrSubscription, c.subFailed)
	}
	return nil
}

var awaitBufs = sync.Pool{New: func() any { b := make([]byte, 4096); return &b }}

// await reads c on the dialing goroutine until done reports true.
func (c *conn) await(deadline time.Time, sh *shard, done func() bool) error {
	bp := awaitBufs.Get().(*[]byte)
	defer awaitBufs.Put(bp)
	c.nc.SetReadDeadline(deadline)
	for !done() {
		n, err := c.nc.Read(*bp)
		if n > 0 {
			if ferr := c.feed((*bp)[:n], time.Now().UnixNano(), sh); ferr != nil {
				return ferr
			}
		}
		if err != nil && !done() {
			return err
		}
	}
	return nil
}

// dialAll opens connections first..first+n-1 with the configured
// concurrency, retrying failures, and returns them by id (nil where every
// attempt failed). It stops early when ctx ends.
func (p *pool) dialAll(ctx context.Context, first, n int, spec func(id int) dialSpec) []*conn {
	out := make([]*conn, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(p.o.Concurrency, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				for attempt := 0; attempt <= p.o.DialRetries && ctx.Err() == nil; attempt++ {
					p.attempts.Add(1)
					s := spec(first + i)
					c, err := p.open(ctx, first+i, s)
					if err == nil {
						out[i] = c
						p.established.Add(1)
						p.nodeConns[s.node].Add(1)
						break
					}
					p.noteError(err)
					if attempt == p.o.DialRetries {
						p.failed.Add(1)
						break
					}
					select {
					case <-ctx.Done():
					case <-time.After(time.Duration(100*(attempt+1)) * time.Millisecond):
					}
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// shutdown stops the reader and closes every connection.
func (p *pool) shutdown(conns ...[]*conn) {
	p.rd.close()
	for _, cs := range conns {
		for _, c := range cs {
			if c != nil {
				c.close(true)
			}
		}
	}
}

// closedCount is the number of connections the server closed or lost.
func (p *pool) closedCount() uint64 {
	var n uint64
	for _, sh := range p.shards {
		n += sh.closed.Load()
	}
	return n
}

func (p *pool) errorCount() uint64 {
	var n uint64
	for _, sh := range p.shards {
		n += sh.errors.Load()
	}
	return n
}

// finishDelivery completes d once every connection's counts are in: the
// delivery rate from start to the last receipt, whether it is complete
// (complete says the run itself ended in time), and the latency summary;
// both go into res.
func (p *pool) finishDelivery(res *Result, d *DeliveryResult, complete bool, start time.Time) {
	if last := p.lastReceipt(); last > 0 {
		d.Seconds = time.Unix(0, last).Sub(start).Seconds()
		if d.Seconds > 0 {
			d.PerSecond = float64(d.Unique) / d.Seconds
		}
	}
	d.Complete = complete && d.Missing == 0 && d.Duplicate == 0 && d.OutOfOrder == 0 && d.Unexpected == 0
	res.Delivery = d
	lat := p.latency().Summary()
	res.Latency = &lat
}
