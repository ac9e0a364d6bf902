// Package hub keeps one node's live state: which local connection is
// subscribed to which channel, which users are signed in where, and who
// watches whom. It fans out publications to local subscribers as shared,
// pre-encoded bytes and does no I/O of its own: everything that must reach
// other nodes goes through the broker.
//
// Locking: channels live in shards, each with its own lock, and each channel
// has its own lock for its subscriber list. A publication holds a channel's
// read lock only while it hands the payload to each subscriber, which never
// blocks (Subscriber.Deliver only queues bytes).
package hub

import (
	"context"
	"hash/maphash"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/internal/broker"
)

const numShards = 64

// Subscriber is one local connection as the hub sees it.
type Subscriber interface {
	// SocketID identifies the connection, for exclusion of the sender.
	SocketID() string
	// Deliver queues p for the connection. It must not block.
	Deliver(p *Publication)
}

// Config configures a hub.
type Config struct {
	// Broker carries publications and presence state between nodes.
	Broker broker.Broker
	// Observers receive the hub's events, synchronously (see Observer).
	Observers []Observer
	// MaxConnections caps this node's connections over all apps; zero is
	// unlimited.
	MaxConnections int
	// OpTimeout bounds each piece of off-loop work (Conn.Do); zero means
	// DefaultOpTimeout.
	OpTimeout time.Duration
	// TransitionsFor, when set, asks the broker for the cluster-wide
	// occupancy and membership changes of the apps it accepts, emitted as
	// EventTransition (what webhooks need; they cost the broker some
	// state, so only for the apps someone listens to).
	TransitionsFor func(appID string) bool
	// Clock is the time of the user budgets (TakeJoin, SignIn) and drives
	// their sweep; nil is SystemClock.
	Clock Clock
}

// Hub is one node's protocol-neutral core: the connection registry
// (admission, quotas, socket ids, draining), the local subscription
// registry and fan-out, presence by user, signed-in users and watchlists,
// and the event stream. Front ends reach the broker only through it.
type Hub struct {
	cfg       Config
	broker    broker.Broker
	observers observers
	seed      maphash.Seed
	shards    [numShards]shard
	users     users
	budgets   budgets
	conns     connRegistry
	// slowConsumers counts connections cut off for not reading.
	slowConsumers atomic.Uint64

	// ctx is the context of off-loop work; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc
	ops    sync.WaitGroup
	// opsMu orders starting off-loop goroutines before Close's wait;
	// opsClosed, once set, refuses new work.
	opsMu     sync.RWMutex
	opsClosed bool
}

type chanKey struct{ app, name string }

// shard holds the channels whose keys hash to it, by app and then by name:
// a map keyed by the name alone has entries of 24 bytes where a chanKey's
// are 40, and every channel with a subscriber is one.
type shard struct {
	mu       sync.RWMutex
	channels map[string]map[string]*channel
}

// get is the channel k, or nil. sh.mu is held.
func (sh *shard) get(k chanKey) *channel { return sh.channels[k.app][k.name] }

// put adds the channel k. sh.mu is held for writing.
func (sh *shard) put(k chanKey, ch *channel) {
	m := sh.channels[k.app]
	if m == nil {
		m = map[string]*channel{}
		sh.channels[k.app] = m
	}
	m[k.name] = ch
}

// del removes the channel k; an app's map goes with its last channel, and
// with it the table a burst of channels made. sh.mu is held for writing.
func (sh *shard) del(k chanKey) {
	m := sh.channels[k.app]
	delete(m, k.name)
	if len(m) == 0 {
		delete(sh.channels, k.app)
	}
}

type channel struct {
	mu   sync.RWMutex
	subs []Subscriber
	// index is each subscriber's position in subs, for O(1) removal. Most
	// channels have a few subscribers (a user's own channel, a document's
	// channel), so it is built only once a channel outgrows a linear scan:
	// a map costs an idle one-subscriber channel a few hundred bytes.
	index map[Subscriber]int
}

// indexThreshold is the subscriber count past which a channel keeps an index.
const indexThreshold = 16

func (ch *channel) pos(s Subscriber) int {
	if ch.index != nil {
		if i, ok := ch.index[s]; ok {
			return i
		}
		return -1
	}
	for i, x := range ch.subs {
		if x == s {
			return i
		}
	}
	return -1
}

func (ch *channel) add(s Subscriber) {
	ch.subs = append(ch.subs, s)
	switch {
	case ch.index != nil:
		ch.index[s] = len(ch.subs) - 1
	case len(ch.subs) > indexThreshold:
		ch.index = make(map[Subscriber]int, 2*len(ch.subs))
		for i, x := range ch.subs {
			ch.index[x] = i
		}
	}
}

// remove deletes the subscriber at position i, moving the last one there.
func (ch *channel) remove(i int) {
	s := ch.subs[i]
	last := len(ch.subs) - 1
	ch.subs[i] = ch.subs[last]
	ch.subs[last] = nil
	ch.subs = ch.subs[:last]
	if ch.index != nil {
		delete(ch.index, s)
		if i < last {
			ch.index[ch.subs[i]] = i
		}
	}
}

// New returns a hub that publishes through cfg.Broker and registers itself
// as the broker's handler.
func New(cfg Config) *Hub {
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	h := &Hub{cfg: cfg, broker: cfg.Broker, observers: cfg.Observers, seed: maphash.MakeSeed()}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	for i := range h.shards {
		h.shards[i].channels = map[string]map[string]*channel{}
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock
	}
	h.users.init()
	h.budgets.init(cfg.Clock)
	h.conns.init()
	h.broker.SetHandler(h.handle)
	useLocalCounts(cfg.Broker, h)
	if cfg.TransitionsFor != nil {
		h.broker.SetTransitionHandler(h.transition, cfg.TransitionsFor)
	}
	return h
}

var _ broker.LocalCounts = (*Hub)(nil)

// useLocalCounts hands h's counts to b, or to the broker b wraps, if it
// takes them.
func useLocalCounts(b broker.Broker, h *Hub) {
	for b != nil {
		if u, ok := b.(broker.LocalCountsUser); ok {
			u.UseLocalCounts(h)
			return
		}
		w, ok := b.(interface{ Unwrap() broker.Broker })
		if !ok {
			return
		}
		b = w.Unwrap()
	}
}

// Close refuses new off-loop work, cancels what still runs (its broker
// calls fail with the context's error) and waits for it to end, or for ctx;
// it stops the sweep of the user budgets. Call it after Drain, before
// closing the broker.
func (h *Hub) Close(ctx context.Context) error {
	h.opsMu.Lock()
	h.opsClosed = true
	h.opsMu.Unlock()
	h.cancel()
	h.budgets.close()
	return h.WaitOps(ctx)
}

// emit hands e to every observer.
func (h *Hub) emit(e Event) {
	if len(h.observers) > 0 {
		h.observers.emit(e)
	}
}

func (h *Hub) shard(k chanKey) *shard {
	return &h.shards[appKeyHash(h.seed, k.app, k.name)%numShards]
}

// appKeyHash hashes an app id and a name within the app (a channel, a
// user), for the shard that holds what they key.
func appKeyHash(seed maphash.Seed, app, name string) uint64 {
	var mh maphash.Hash
	mh.SetSeed(seed)
	mh.WriteString(app)
	mh.WriteByte(0)
	mh.WriteString(name)
	return mh.Sum64()
}

// Subscribe adds s to a channel. It reports the channel's local subscriber
// count afterwards and whether s was newly added (false if it already was
// subscribed).
func (h *Hub) Subscribe(appID, name string, s Subscriber) (count int, added bool) {
	return h.SubscribeThen(appID, name, s, nil)
}

// SubscribeThen is Subscribe that, when s was added, calls confirm before
// the channel's next publication can reach s: what confirm sends (a
// subscription's confirmation) comes before the channel's first event.
// confirm runs with the channel's locks held and must only queue bytes.
func (h *Hub) SubscribeThen(appID, name string, s Subscriber, confirm func()) (count int, added bool) {
	count, _, added = h.subscribe(appID, name, s, confirm, false)
	return count, added
}

// subscribe adds s to a channel and calls confirm (when not nil) before the
// channel's next publication can reach s. With awaitInterest, that happens
// only if the node already receives the channel's cluster messages;
// otherwise s goes in through a holder, returned for the caller to
// Activate. added is false, and nothing is done, when s already was
// subscribed.
func (h *Hub) subscribe(appID, name string, s Subscriber, confirm func(), awaitInterest bool) (count int, p *Pending, added bool) {
	k := chanKey{appID, name}
	sh := h.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ch := sh.get(k)
	if ch == nil {
		ch = &channel{}
		sh.put(k, ch)
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.pos(s) >= 0 {
		return len(ch.subs), nil, false
	}
	n := len(ch.subs) + 1
	// Under the channel's lock, so the broker hears the counts in order,
	// and before readiness is judged: the count declares the interest.
	h.broker.SetLocalCount(appID, name, n)
	if !awaitInterest || h.broker.InterestReady(appID, name) {
		ch.add(s)
		if confirm != nil {
			confirm()
		}
	} else {
		p = &Pending{hub: h, key: k, final: s}
		ch.add(p)
	}
	if len(h.observers) > 0 {
		if n == 1 {
			h.emit(Event{Type: EventChannelOccupied, AppID: appID, Channel: name})
		}
		h.emit(Event{Type: EventSubscriptionCount, AppID: appID, Channel: name, SocketID: s.SocketID(), Count: n, Delta: 1})
	}
	return n, p, true
}

// Unsubscribe removes s from a channel. It reports the remaining local
// subscriber count and whether s had been subscribed.
func (h *Hub) Unsubscribe(appID, name string, s Subscriber) (count int, removed bool) {
	k := chanKey{appID, name}
	sh := h.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ch := sh.get(k)
	if ch == nil {
		return 0, false
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	i := ch.pos(s)
	if i < 0 {
		return len(ch.subs), false
	}
	ch.remove(i)
	n := len(ch.subs)
	if n == 0 {
		sh.del(k)
	}
	h.broker.SetLocalCount(appID, name, n)
	if len(h.observers) > 0 {
		h.emit(Event{Type: EventSubscriptionCount, AppID: appID, Channel: name, SocketID: s.SocketID(), Count: n, Delta: -1})
		if n == 0 {
			h.emit(Event{Type: EventChannelVacated, AppID: appID, Channel: name})
		}
	}
	return n, true
}

// Publish sends m through the broker to every node, this one included. src
// says where it came from, for the event stream. It may wait on the broker:
// front ends call it off the transport's loop.
func (h *Hub) Publish(ctx context.Context, m broker.Message, src Source) error {
	if err := h.broker.Publish(ctx, m); err != nil {
		return err
	}
	if len(h.observers) > 0 {
		h.published(&m, src)
	}
	return nil
}

// PublishMany publishes n messages, the i-th being msg(i), in order, as n
// calls to Publish would, but in few calls to a broker that takes several
// at once (broker.BatchPublisher: one round trip to Redis for each
// publishBatchMax of them). msg is called once for each i, in increasing
// order. It returns n and nil, or how many were published, from the
// first, and the next one's error; the messages after that one may or may
// not have been published.
func (h *Hub) PublishMany(ctx context.Context, n int, msg func(int) broker.Message, src Source) (int, error) {
	bp, ok := h.broker.(broker.BatchPublisher)
	if !ok || n <= 1 {
		for i := range n {
			if err := h.Publish(ctx, msg(i), src); err != nil {
				return i, err
			}
		}
		return n, nil
	}
	ms := make([]broker.Message, min(n, publishBatchMax))
	for start := 0; start < n; start += len(ms) {
		ms = ms[:min(len(ms), n-start)]
		for i := range ms {
			ms[i] = msg(start + i)
		}
		done, err := bp.PublishBatch(ctx, ms)
		if len(h.observers) > 0 {
			for i := range ms[:done] {
				h.published(&ms[i], src)
			}
		}
		if err != nil {
			return start + done, err
		}
	}
	return n, nil
}

// publishBatchMax bounds the messages PublishMany hands a broker at once:
// a request's round trips stay few (Pusher's triggers name at most 100
// channels, its batches hold 10 events) while what a request holds at once
// stays bounded, however many channels a broadcast names.
const publishBatchMax = 100

// published reports a published message to the observers.
func (h *Hub) published(m *broker.Message, src Source) {
	h.emit(Event{Type: EventPublished, AppID: m.AppID, Channel: m.Channel, Source: src})
	if src == SourceClient {
		h.emit(Event{Type: EventClientEvent, AppID: m.AppID, Channel: m.Channel, Name: m.Event, Data: m.Data, SocketID: m.Exclude, UserID: m.UserID})
	}
}

// handle is the broker's handler: this node's share of every message.
func (h *Hub) handle(m broker.Message) {
	switch m.Kind {
	case broker.KindEvent, broker.KindMemberAdded, broker.KindMemberRemoved:
		h.fanout(&Publication{Message: m})
	case broker.KindTerminate:
		h.users.terminate(m.AppID, m.UserID)
	case broker.KindUnsubscribe:
		h.users.unsubscribe(m.AppID, m.Channel, m.UserID)
	case broker.KindUserOnline, broker.KindUserOffline:
		h.users.notify(m.AppID, m.UserID, m.Kind == broker.KindUserOnline)
	}
}

// fanout hands p to every local subscriber of its channel but the excluded
// one. It allocates nothing per subscriber.
func (h *Hub) fanout(p *Publication) {
	k := chanKey{p.AppID, p.Channel}
	sh := h.shard(k)
	sh.mu.RLock()
	ch := sh.get(k)
	sh.mu.RUnlock()
	if ch == nil {
		return
	}
	ch.mu.RLock()
	n := len(ch.subs)
	for _, s := range ch.subs {
		if p.Exclude != "" && s.SocketID() == p.Exclude {
			n--
			continue
		}
		s.Deliver(p)
	}
	ch.mu.RUnlock()
	// Counted per publication, not per delivery: observers see one event
	// however many subscribers there are.
	if n > 0 && len(h.observers) > 0 {
		h.emit(Event{Type: EventDelivered, AppID: p.AppID, Channel: p.Channel, Count: n})
	}
}

// InterestReady reports whether this node already receives the channel's
// messages from the whole cluster (always, on a single node). A front end
// may confirm a subscription at once when it does; otherwise it confirms
// after AwaitInterest, so that nothing published after the confirmation is
// missed.
func (h *Hub) InterestReady(appID, name string) bool { return h.broker.InterestReady(appID, name) }

// AwaitInterest waits until this node receives the channel's messages from
// the whole cluster. It may wait on the broker.
func (h *Hub) AwaitInterest(ctx context.Context, appID, name string) error {
	return h.broker.AwaitInterest(ctx, appID, name)
}

// ClusterSubscriptionCount is the channel's subscriber count over every
// node. It may wait on the broker.
func (h *Hub) ClusterSubscriptionCount(ctx context.Context, appID, name string) (int, error) {
	return h.broker.SubscriptionCount(ctx, appID, name)
}

// ClusterChannels lists an app's channels occupied on any node whose names
// start with prefix, with their cluster-wide counts, sorted by name. It may
// wait on the broker.
func (h *Hub) ClusterChannels(ctx context.Context, appID, prefix string) ([]broker.ChannelCount, error) {
	return h.broker.Channels(ctx, appID, prefix)
}

// SubscriptionCount is the number of local connections subscribed to a channel.
func (h *Hub) SubscriptionCount(appID, name string) int {
	k := chanKey{appID, name}
	sh := h.shard(k)
	sh.mu.RLock()
	ch := sh.get(k)
	sh.mu.RUnlock()
	if ch == nil {
		return 0
	}
	ch.mu.RLock()
	defer ch.mu.RUnlock()
	return len(ch.subs)
}

// Channels lists an app's occupied channels whose names start with prefix,
// with their local subscriber counts, sorted by name.
func (h *Hub) Channels(appID, prefix string) []broker.ChannelCount {
	var out []broker.ChannelCount
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for name, ch := range sh.channels[appID] {
			if !strings.HasPrefix(name, prefix) {
				continue
			}
			ch.mu.RLock()
			n := len(ch.subs)
			ch.mu.RUnlock()
			if n > 0 {
				out = append(out, broker.ChannelCount{Name: name, Subscriptions: n})
			}
		}
		sh.mu.RUnlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
