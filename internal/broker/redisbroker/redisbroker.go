// Package redisbroker is the cluster broker: broker.Broker on Redis, so
// that the nodes of one Herald deployment share publications, presence,
// cached events, occupancy and signed-in users.
//
// Publications travel by Redis pub/sub in the cluster wire encoding
// (broker.AppendWire): one Redis channel per app channel, which a node
// subscribes to only while it has local subscribers, and one control
// channel for node-wide messages that every node subscribes to. Shared
// state lives in hashes and sorted sets changed by Lua scripts, each
// atomic. Every node heartbeats into a sorted set of nodes scored by
// deadline; the survivors of a node that stops heartbeating remove what it
// had registered.
//
// A node starts and serves its local connections while Redis is down: New
// connects in the background, operations with a context fail with an
// error wrapping the cause, and the rest (counts, users, subscriptions,
// the node's registration) is put back when Redis is reachable again, even
// if it came back empty.
//
// One process writes under a node id at a time: the broker holds the id's
// claim (claim.go), waits at start for another process's to expire, and
// stops writing, reporting it through Failed, when another process holds
// it.
//
// Redis Cluster is not supported (the scripts touch keys they compute);
// a single primary, optionally behind Sentinel, is.
package redisbroker

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/redis/rueidis"
)

// Options configure a Broker.
type Options struct {
	URL            string      // redis://[user:pass@]host:port/db or rediss:// (TLS)
	TLS            *tls.Config // optional; overrides the URL's TLS settings (CA, client cert)
	SentinelMaster string      // with SentinelAddrs: connect through Sentinel
	SentinelAddrs  []string
	Prefix         string        // key and channel prefix; default "herald"
	NodeID         string        // default: generated (random, 12 hex chars)
	NodeTTL        time.Duration // a node not refreshed for this long is dead; default 20s
	Refresh        time.Duration // heartbeat and sweep interval; default 5s or NodeTTL/4 if shorter (NodeTTL+Refresh <= 30s: the crash-cleanup promise)
	CacheTTL       time.Duration // cache channels' last event; <=0: broker.DefaultCacheTTL
	Log            *slog.Logger
	Clock          func() time.Time // tests; default time.Now
}

// Defaults.
const (
	DefaultPrefix  = "herald"
	DefaultNodeTTL = 20 * time.Second
	DefaultRefresh = 5 * time.Second
)

const (
	workers     = 4    // fan-out goroutines, each owning a hash share of the channels
	queueLen    = 1024 // per worker; a full queue blocks the pub/sub reader
	flushBatch  = 512  // state writes per pipelined flush
	dialTimeout = 2 * time.Second
	maxBackoff  = 2 * time.Second
	subTimeout  = 5 * time.Second
)

// ErrNotConnected is wrapped by operations attempted before the broker's
// first connection to Redis succeeded.
var ErrNotConnected = errors.New("redisbroker: not connected to redis")

// ErrSubscriptionLost is wrapped by a publish refused because this node's
// own subscribers would miss it: the node's pub/sub connection was lost
// and its subscription to the channel is not back yet.
var ErrSubscriptionLost = errors.New("redisbroker: this node's subscription is lost until it reconnects")

// Stats are the broker's health counters.
type Stats struct {
	Connected  bool
	Outages    uint64 // times Redis became unreachable
	Reconnects uint64 // times it became reachable again after an outage
	Malformed  uint64 // pub/sub payloads dropped as undecodable
}

// Broker is broker.Broker on Redis.
type Broker struct {
	log      *slog.Logger
	now      func() time.Time
	k        keys
	node     string
	token    string // this process's claim of node (see claim.go)
	nodeTTL  time.Duration
	refresh  time.Duration
	cacheTTL time.Duration
	copt     rueidis.ClientOption

	ctx    context.Context // ends at Close: every background goroutine's exit
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool

	clientMu  sync.RWMutex
	client    rueidis.Client // nil until the first connection
	connErr   error          // last connection failure, while client is nil
	connected chan struct{}  // closed once client is set
	attempted chan struct{}  // closed once the first connection attempt ended
	ctlReady  chan struct{}  // closed once the control channel was first subscribed

	handler atomic.Pointer[broker.Handler]
	// subLost is set from the loss of the pub/sub connection until the
	// subscriptions of the interests it had are all made again, ctlLost
	// until the control channel's is: meanwhile the node hears nothing
	// of those channels (see missed).
	subLost atomic.Bool
	ctlLost atomic.Bool
	trans   atomic.Pointer[transitions] // nil: transitions not tracked
	queues  [workers]chan broker.Message

	// The local mirror of everything this node registers, from which it
	// writes (and rewrites) the shared state.
	mu        sync.Mutex
	counts    map[chanKey]int
	interest  map[chanKey]*interest // channels with local subscribers
	dirtyCnt  map[chanKey]struct{}
	writing   map[chanKey]struct{} // counts the writer is writing now
	written   chan struct{}        // closed and replaced after each write of counts
	users     map[chanKey]int      // by app and user id
	dirtyUser map[chanKey]struct{}
	// usersSent are the users this node has sent Redis as online (the
	// write attempted), until a write of them as offline succeeded: an
	// offline write of any other user is a no-op, and is not made.
	// countsSent are the same for channel counts.
	usersSent  map[chanKey]struct{}
	countsSent map[chanKey]struct{}
	subDirty   map[chanKey]struct{}       // interest changes not yet (un)subscribed
	leaves     map[presKey]pendingLeave   // failed leaves to retry
	unsure     map[presKey]struct{}       // failed joins that may have been applied
	announce   map[presKey]broker.Message // members re-registered as new, to announce

	presLocks [64]sync.Mutex // by connection: a join, a leave and a re-registration of one connection do not interleave
	presMu    sync.Mutex
	presence  map[presKey]broker.Member

	writeKick  chan struct{}
	subKick    chan struct{}
	keeperKick chan struct{}
	resync     atomic.Bool // the node's registration was found missing
	registered atomic.Bool // a heartbeat registered the node once

	claiming atomic.Bool   // waiting at start for another process's claim to expire
	failed   chan struct{} // closed when the broker stopped writing for good (see stop)
	failOnce sync.Once
	failErr  error // set before failed is closed

	state      atomic.Int32 // 0 starting, 1 up, 2 down
	outages    atomic.Uint64
	reconnects atomic.Uint64
	malformed  atomic.Uint64
}

var (
	_ broker.Broker         = (*Broker)(nil)
	_ broker.BatchPublisher = (*Broker)(nil)
)

type chanKey struct{ app, name string }

type presKey struct{ app, channel, conn string }

// pendingLeave is a failed leave to retry: the user, and whether the
// connection's join had succeeded (not merely may have).
type pendingLeave struct {
	user   string
	joined bool
}

type interest struct {
	ready   bool
	readyCh chan struct{} // closed when ready
	// lapsed: the interest was ready, and the pub/sub connection was
	// lost since; it is cleared when ready again.
	lapsed bool
}

// readyClosed stands in for the readyCh of every ready interest. A node
// keeps an interest for each channel with a local subscriber, most of them
// ready for as long as they last; a closed channel of their own would hold
// about 100 bytes each for nothing, since a waiter keeps the channel it
// read.
var readyClosed = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// markReady wakes the interest's waiters and lets its channel go. b.mu
// is held.
func (in *interest) markReady() {
	in.ready = true
	in.lapsed = false
	close(in.readyCh)
	in.readyCh = readyClosed
}

// New validates o and returns a broker that connects to Redis in the
// background: it does not wait for Redis, so that a node starts and
// serves locally during an outage. It fails only on invalid options.
func New(ctx context.Context, o Options) (*Broker, error) {
	copt, err := clientOptions(o)
	if err != nil {
		return nil, err
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if strings.Contains(o.Prefix, ":") {
		return nil, fmt.Errorf("redisbroker: prefix %q contains ':'", o.Prefix)
	}
	if o.NodeTTL <= 0 {
		o.NodeTTL = DefaultNodeTTL
	}
	if o.Refresh <= 0 {
		o.Refresh = min(DefaultRefresh, o.NodeTTL/4)
	}
	if o.Refresh >= o.NodeTTL {
		return nil, fmt.Errorf("redisbroker: refresh %v must be shorter than the node TTL %v", o.Refresh, o.NodeTTL)
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = broker.DefaultCacheTTL
	}
	if o.NodeID == "" {
		var id [6]byte
		rand.Read(id[:])
		o.NodeID = hex.EncodeToString(id[:])
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	b := &Broker{
		log:        o.Log.With("component", "redisbroker", "node", o.NodeID),
		now:        o.Clock,
		k:          keys{p: o.Prefix + ":"},
		node:       o.NodeID,
		token:      newToken(),
		nodeTTL:    o.NodeTTL,
		refresh:    o.Refresh,
		cacheTTL:   o.CacheTTL,
		copt:       copt,
		connected:  make(chan struct{}),
		attempted:  make(chan struct{}),
		ctlReady:   make(chan struct{}),
		counts:     map[chanKey]int{},
		interest:   map[chanKey]*interest{},
		dirtyCnt:   map[chanKey]struct{}{},
		writing:    map[chanKey]struct{}{},
		written:    make(chan struct{}),
		users:      map[chanKey]int{},
		dirtyUser:  map[chanKey]struct{}{},
		usersSent:  map[chanKey]struct{}{},
		countsSent: map[chanKey]struct{}{},
		subDirty:   map[chanKey]struct{}{},
		leaves:     map[presKey]pendingLeave{},
		unsure:     map[presKey]struct{}{},
		announce:   map[presKey]broker.Message{},
		presence:   map[presKey]broker.Member{},
		writeKick:  make(chan struct{}, 1),
		subKick:    make(chan struct{}, 1),
		keeperKick: make(chan struct{}, 1),
		failed:     make(chan struct{}),
	}
	if o.NodeTTL+o.Refresh > 30*time.Second {
		b.log.Warn("node TTL plus refresh exceeds 30s: a crashed node's members linger longer",
			"node_ttl", o.NodeTTL, "refresh", o.Refresh)
	}
	nop := broker.Handler(func(broker.Message) {})
	b.handler.Store(&nop)
	// The broker's goroutines outlive New's context: they end at Close.
	b.ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for i := range b.queues {
		b.queues[i] = make(chan broker.Message, queueLen)
		b.goBackground(func() { b.work(b.queues[i]) })
	}
	b.goBackground(b.connect)
	b.goBackground(b.subscriber)
	b.goBackground(b.writer)
	b.goBackground(b.keeper)
	return b, nil
}

func clientOptions(o Options) (rueidis.ClientOption, error) {
	var copt rueidis.ClientOption
	switch {
	case o.URL != "":
		var err error
		copt, err = rueidis.ParseURL(o.URL)
		if err != nil {
			// The URL may hold a password: do not repeat it.
			return copt, errors.New("redisbroker: invalid redis URL (want redis://[user:pass@]host:port/db or rediss://…)")
		}
	case o.SentinelMaster == "":
		return copt, errors.New("redisbroker: no redis URL")
	}
	if o.SentinelMaster != "" {
		if len(o.SentinelAddrs) == 0 {
			return copt, errors.New("redisbroker: sentinel master without sentinel addresses")
		}
		copt.InitAddress = o.SentinelAddrs
		copt.Sentinel.MasterSet = o.SentinelMaster
		// The URL's credentials and database are the master's; sentinels
		// are asked without them (a sentinel without a password refuses
		// AUTH). TLS, if the URL asks for it, applies to both.
		copt.Sentinel.TLSConfig = copt.TLSConfig
	} else if len(copt.InitAddress) != 1 {
		return copt, errors.New("redisbroker: the redis URL must name one host")
	}
	if o.TLS != nil {
		copt.TLSConfig = o.TLS
		if o.SentinelMaster != "" {
			copt.Sentinel.TLSConfig = o.TLS
		}
	}
	copt.DisableCache = true
	copt.Dialer.Timeout = dialTimeout
	copt.ClientName = "herald"
	return copt, nil
}

func (b *Broker) goBackground(f func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
}

// NodeID is this node's id in the cluster.
func (b *Broker) NodeID() string { return b.node }

// Connected reports whether Redis was reachable at the last attempt.
func (b *Broker) Connected() bool { return b.state.Load() == 1 }

// Stats returns the broker's health counters.
func (b *Broker) Stats() Stats {
	return Stats{
		Connected:  b.Connected(),
		Outages:    b.outages.Load(),
		Reconnects: b.reconnects.Load(),
		Malformed:  b.malformed.Load(),
	}
}

// connect creates the client, retrying with backoff until Redis answers.
func (b *Broker) connect() {
	var once sync.Once
	attempted := func() { once.Do(func() { close(b.attempted) }) }
	defer attempted()
	// While the claim is held by another process, callers are not kept
	// waiting for the first attempt: they fail at once, saying why.
	waiting := func() {
		b.clientMu.Lock()
		b.connErr = errClaimWait
		b.clientMu.Unlock()
		attempted()
	}
	for attempt := 0; ; attempt++ {
		c, err := rueidis.NewClient(b.copt)
		if err == nil {
			// The claim comes first: what is registered under the id
			// may be a live process's, not to be removed.
			if err = b.claim(c, waiting); err == nil {
				err = b.forgetEarlierSelf(c)
			}
			if err != nil {
				c.Close()
			}
		}
		if errors.Is(err, ErrNodeIDInUse) {
			b.clientMu.Lock()
			b.connErr = err
			b.clientMu.Unlock()
			b.stop(err)
			return
		}
		if err == nil {
			b.clientMu.Lock()
			b.client, b.connErr = c, nil
			b.clientMu.Unlock()
			close(b.connected)
			attempted()
			b.markUp()
			kick(b.keeperKick)
			return
		}
		b.clientMu.Lock()
		b.connErr = err
		b.clientMu.Unlock()
		attempted()
		b.markDown(err)
		if !b.sleep(backoff(attempt)) {
			return
		}
	}
}

// forgetEarlierSelf removes what an earlier process with this node id
// registered (a node restarted with a configured NodeID before its old
// registration expired): a starting node holds nothing yet, so whatever is
// registered under its id would otherwise stay forever, refreshed by the
// new process's heartbeats. It runs before anything else uses the client.
func (b *Broker) forgetEarlierSelf(c rueidis.Client) error {
	ctx, cancel := context.WithTimeout(b.ctx, subTimeout)
	defer cancel()
	res, err := cleanup.Exec(ctx, c, []string{b.k.nodes(), b.k.registry(b.node), b.k.swept(b.node), b.k.claim(b.node)},
		[]string{b.node, "", b.k.control(), b.tracking(""), holdMS, sweptMS, b.token}).ToArray()
	if err != nil {
		return err
	}
	// What the earlier process owed (its channels vacated, its members
	// removed) is this one's to report.
	b.reportCleanup(res)
	if n, ok := cleanupCounts(res); ok && n[1]+n[2]+n[3] > 0 {
		b.log.Info("removed an earlier registration of this node id",
			"channels", n[1], "users_offline", n[2], "members_removed", n[3])
	}
	return nil
}

// conn returns the client, or an error saying why there is none. Until
// the first connection attempt has ended it waits for it (or ctx).
func (b *Broker) conn(ctx context.Context, op string) (rueidis.Client, error) {
	if b.closed.Load() {
		return nil, broker.ErrClosed
	}
	select {
	case <-b.attempted:
	case <-b.connected:
	case <-ctx.Done():
		return nil, fmt.Errorf("redisbroker: %s: %w: %w", op, ErrNotConnected, ctx.Err())
	}
	b.clientMu.RLock()
	c, err := b.client, b.connErr
	b.clientMu.RUnlock()
	if c != nil {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redisbroker: %s: %w: %w", op, ErrNotConnected, err)
	}
	return nil, fmt.Errorf("redisbroker: %s: %w", op, ErrNotConnected)
}

// fail records err's effect on the broker's health and wraps it.
func (b *Broker) fail(op string, err error) error {
	b.noteFailure(err)
	return fmt.Errorf("redisbroker: %s: %w", op, err)
}

// noteFailure declares an outage when err says Redis is unreachable and a
// PING agrees. The PING tells a lost Redis from one stale connection:
// after Redis restarted, each of the client's connections reports the
// loss once before it is replaced, and rueidis retries the PING on a
// fresh one.
func (b *Broker) noteFailure(err error) {
	if !isOutage(err) || b.closed.Load() {
		return
	}
	if b.state.Load() == 1 && b.probe() {
		return
	}
	b.markDown(err)
}

func (b *Broker) probe() bool {
	b.clientMu.RLock()
	c := b.client
	b.clientMu.RUnlock()
	if c == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(b.ctx, time.Second)
	defer cancel()
	return c.Do(ctx, c.B().Ping().Build()).Error() == nil
}

// isOutage tells a failure to reach Redis from a reply Redis gave or a
// caller's context ending.
func isOutage(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if _, ok := rueidis.IsRedisErr(err); ok {
		return false
	}
	return !errors.Is(err, broker.ErrClosed) && !errors.Is(err, ErrNodeIDTaken)
}

// markDown logs the start of an outage once.
func (b *Broker) markDown(err error) {
	if !isOutage(err) || b.closed.Load() {
		return
	}
	if b.state.Swap(2) != 2 {
		b.outages.Add(1)
		b.log.Warn("redis unreachable; serving local connections only until it is back", "err", err)
	}
}

// markUp logs the end of an outage once.
func (b *Broker) markUp() {
	if b.state.Swap(1) == 2 {
		b.reconnects.Add(1)
		b.log.Info("redis reachable again")
	}
}

func backoff(attempt int) time.Duration {
	d := 50 * time.Millisecond << min(attempt, 6)
	return min(d, maxBackoff)
}

// sleep waits d or until Close; it reports whether to go on.
func (b *Broker) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.ctx.Done():
		return false
	}
}

func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// deadline is the node-set score of a registration refreshed now.
func (b *Broker) deadline() string {
	return fmt.Sprint(b.now().Add(b.nodeTTL).UnixMilli())
}

// sawAdded handles a script's report that it had to add this node to the
// node set: the node re-registers everything at once.
func (b *Broker) sawAdded(added int64) {
	if added == 1 {
		b.resync.Store(true)
		kick(b.keeperKick)
	}
}

// SetHandler implements broker.Broker.
func (b *Broker) SetHandler(h broker.Handler) { b.handler.Store(&h) }

// Publish implements broker.Broker: one PUBLISH, preceded in the same
// script by the cache write for a cached event.
func (b *Broker) Publish(ctx context.Context, m broker.Message) error {
	c, err := b.conn(ctx, "publish")
	if err != nil {
		return err
	}
	if b.missed(&m) {
		return fmt.Errorf("redisbroker: publish: %w", ErrSubscriptionLost)
	}
	wire := string(broker.AppendWire(nil, &m))
	ch := b.pubsubOf(&m)
	if m.Cache && m.Kind == broker.KindEvent {
		err = publishCached.Exec(ctx, c, []string{b.k.cache(m.AppID, m.Channel)},
			[]string{wire, fmt.Sprint(b.cacheTTL.Milliseconds()), ch}).Error()
	} else {
		err = c.Do(ctx, c.B().Publish().Channel(ch).Message(wire).Build()).Error()
	}
	if err != nil {
		return b.fail("publish", err)
	}
	return nil
}

// PublishBatch implements broker.BatchPublisher: the PUBLISHes go in one
// pipeline on one connection, which Redis runs in order, so a trigger that
// names a hundred channels is one round trip rather than a hundred. A batch
// holding a cached event is published one message at a time instead: its
// script and the PUBLISHes around it would not keep their order otherwise.
func (b *Broker) PublishBatch(ctx context.Context, ms []broker.Message) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	c, err := b.conn(ctx, "publish")
	if err != nil {
		return 0, err
	}
	// None is published if this node's subscribers would miss any: the
	// request is then refused whole, and a retry duplicates nothing. This
	// comes before the one-at-a-time path of a batch with a cached event,
	// whose Publish calls would otherwise send the messages before the
	// first refused one.
	for i := range ms {
		if b.missed(&ms[i]) {
			return 0, fmt.Errorf("redisbroker: publish: %w", ErrSubscriptionLost)
		}
	}
	for i := range ms {
		if ms[i].Cache && ms[i].Kind == broker.KindEvent {
			return broker.PublishEach(ctx, b, ms)
		}
	}
	cmds := make(rueidis.Commands, len(ms))
	for i := range ms {
		cmds[i] = c.B().Publish().Channel(b.pubsubOf(&ms[i])).Message(string(broker.AppendWire(nil, &ms[i]))).Build()
	}
	for i, res := range c.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			return i, b.fail("publish", err)
		}
	}
	return len(ms), nil
}

// missed reports whether m, published now, would miss this node's own
// subscribers, whom Redis would not send it to: the pub/sub connection
// was lost, and the subscription to m's channel (for an event), or to the
// control channel (for a termination or an unsubscription), is not back
// yet. Such a publish is refused, so that its sender (a REST request, a
// client event) hears of a failure it can retry once the node has
// reconnected, rather than of a success its own subscribers never see.
// Member announcements, which follow a presence change already made and
// are not retried by anyone, are published as ever: the other nodes'
// subscribers still get them. A channel that had no subscribers here when
// the connection was lost is not waited for: its subscribers, if any
// came since, have not been confirmed.
func (b *Broker) missed(m *broker.Message) bool {
	if !b.subLost.Load() {
		return false
	}
	switch m.Kind {
	case broker.KindEvent:
		b.mu.Lock()
		in := b.interest[chanKey{m.AppID, m.Channel}]
		lapsed := in != nil && in.lapsed
		b.mu.Unlock()
		return lapsed
	case broker.KindTerminate, broker.KindUnsubscribe:
		return b.ctlLost.Load()
	}
	return false
}

// pubsubOf is the Redis channel m is published on: its channel's for
// events and member changes, the control channel for the rest.
func (b *Broker) pubsubOf(m *broker.Message) string {
	switch m.Kind {
	case broker.KindEvent, broker.KindMemberAdded, broker.KindMemberRemoved:
		return b.k.pubsub(m.AppID, m.Channel)
	}
	return b.k.control()
}

// LastEvent implements broker.Broker.
func (b *Broker) LastEvent(ctx context.Context, appID, channel string) (broker.Cached, bool, error) {
	c, err := b.conn(ctx, "last event")
	if err != nil {
		return broker.Cached{}, false, err
	}
	key := b.k.cache(appID, channel)
	res := c.DoMulti(ctx, c.B().Get().Key(key).Build(), c.B().Pttl().Key(key).Build())
	wire, err := res[0].ToString()
	if rueidis.IsRedisNil(err) {
		return broker.Cached{}, false, nil
	}
	if err != nil {
		return broker.Cached{}, false, b.fail("last event", err)
	}
	ms, err := res[1].AsInt64()
	if err != nil {
		return broker.Cached{}, false, b.fail("last event", err)
	}
	if ms == -2 || ms == 0 { // expired between the two commands
		return broker.Cached{}, false, nil
	}
	m, err := broker.DecodeWire([]byte(wire))
	if err != nil {
		return broker.Cached{}, false, fmt.Errorf("redisbroker: last event of %s: %w", channel, err)
	}
	ttl := time.Duration(ms) * time.Millisecond
	if ms < 0 || ttl > b.cacheTTL {
		ttl = b.cacheTTL
	}
	return broker.Cached{Message: m, TTL: ttl}, true, nil
}

// Ping implements broker.Broker: a PING round trip.
func (b *Broker) Ping(ctx context.Context) error {
	c, err := b.conn(ctx, "ping")
	if err != nil {
		return err
	}
	if err := c.Do(ctx, c.B().Ping().Build()).Error(); err != nil {
		return b.fail("ping", err)
	}
	b.markUp()
	return nil
}

// Close implements broker.Broker: it stops the background work, removes
// what this node registered (its members leave, with KindMemberRemoved
// for those who lost their last connection, and its users go offline),
// gives up the node id's claim and closes the connection to Redis. A
// broker whose node id another process holds removes nothing: what is
// registered under the id is that process's.
func (b *Broker) Close(ctx context.Context) error {
	if b.closed.Swap(true) {
		return broker.ErrClosed
	}
	b.cancel()
	b.wg.Wait()
	b.clientMu.RLock()
	c := b.client
	b.clientMu.RUnlock()
	if c == nil {
		return nil
	}
	defer c.Close()
	if errors.Is(b.stopped(), ErrNodeIDTaken) {
		return nil
	}
	// Nothing is tracked: a node going away reports to no one.
	err := cleanup.Exec(ctx, c, []string{b.k.nodes(), b.k.registry(b.node), b.k.swept(b.node), b.k.claim(b.node)},
		[]string{b.node, "", b.k.control(), "", holdMS, sweptMS, b.token}).Error()
	if err != nil {
		return fmt.Errorf("redisbroker: close: removing this node's state: %w", b.taken(err))
	}
	if err := b.release(ctx, c); err != nil {
		return fmt.Errorf("redisbroker: close: giving up the node id's claim: %w", err)
	}
	return nil
}
