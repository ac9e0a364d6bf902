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

// Hub is the local subscription registry and fan-out.
type Hub struct {
	broker broker.Broker
	seed   maphash.Seed
	shards [numShards]shard
	users  users
	conns  connCounts
}

type chanKey struct{ app, name string }

type shard struct {
	mu       sync.RWMutex
	channels map[chanKey]*channel
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

// New returns a hub that publishes through b and registers itself as b's
// handler.
func New(b broker.Broker) *Hub {
	h := &Hub{broker: b, seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].channels = map[chanKey]*channel{}
	}
	h.users.init()
	h.conns.byApp = map[string]int{}
	b.SetHandler(h.handle)
	return h
}

// Broker returns the broker the hub publishes through.
func (h *Hub) Broker() broker.Broker { return h.broker }

func (h *Hub) shard(k chanKey) *shard {
	var mh maphash.Hash
	mh.SetSeed(h.seed)
	mh.WriteString(k.app)
	mh.WriteByte(0)
	mh.WriteString(k.name)
	return &h.shards[mh.Sum64()%numShards]
}

// Subscribe adds s to a channel. It reports the channel's local subscriber
// count afterwards and whether s was newly added (false if it already was
// subscribed).
func (h *Hub) Subscribe(appID, name string, s Subscriber) (count int, added bool) {
	k := chanKey{appID, name}
	sh := h.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ch := sh.channels[k]
	if ch == nil {
		ch = &channel{}
		sh.channels[k] = ch
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.pos(s) >= 0 {
		return len(ch.subs), false
	}
	ch.add(s)
	return len(ch.subs), true
}

// Unsubscribe removes s from a channel. It reports the remaining local
// subscriber count and whether s had been subscribed.
func (h *Hub) Unsubscribe(appID, name string, s Subscriber) (count int, removed bool) {
	k := chanKey{appID, name}
	sh := h.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ch := sh.channels[k]
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
	if len(ch.subs) == 0 {
		delete(sh.channels, k)
	}
	return len(ch.subs), true
}

// Publish sends m through the broker to every node, this one included.
func (h *Hub) Publish(ctx context.Context, m broker.Message) error {
	return h.broker.Publish(ctx, m)
}

// handle is the broker's handler: this node's share of every message.
func (h *Hub) handle(m broker.Message) {
	switch m.Kind {
	case broker.KindEvent:
		h.fanout(&Publication{Message: m})
	case broker.KindTerminate:
		h.users.terminate(m.AppID, m.UserID)
	}
}

// fanout hands p to every local subscriber of its channel but the excluded
// one. It allocates nothing per subscriber.
func (h *Hub) fanout(p *Publication) {
	k := chanKey{p.AppID, p.Channel}
	sh := h.shard(k)
	sh.mu.RLock()
	ch := sh.channels[k]
	sh.mu.RUnlock()
	if ch == nil {
		return
	}
	ch.mu.RLock()
	defer ch.mu.RUnlock()
	for _, s := range ch.subs {
		if p.Exclude != "" && s.SocketID() == p.Exclude {
			continue
		}
		s.Deliver(p)
	}
}

// SubscriptionCount is the number of local connections subscribed to a channel.
func (h *Hub) SubscriptionCount(appID, name string) int {
	k := chanKey{appID, name}
	sh := h.shard(k)
	sh.mu.RLock()
	ch := sh.channels[k]
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
func (h *Hub) Channels(appID, prefix string) []ChannelCount {
	var out []ChannelCount
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for k, ch := range sh.channels {
			if k.app != appID || !strings.HasPrefix(k.name, prefix) {
				continue
			}
			ch.mu.RLock()
			n := len(ch.subs)
			ch.mu.RUnlock()
			if n > 0 {
				out = append(out, ChannelCount{Name: k.name, Subscriptions: n})
			}
		}
		sh.mu.RUnlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ChannelCount is one occupied channel and its subscriber count.
type ChannelCount struct {
	Name          string
	Subscriptions int
}

// connCounts enforces per-app connection quotas on this node.
type connCounts struct {
	mu    sync.Mutex
	byApp map[string]int
}

// AddConnection counts a new connection of appID, refusing it when the app
// already has max connections (max <= 0: unlimited).
func (h *Hub) AddConnection(appID string, max int) bool {
	h.conns.mu.Lock()
	defer h.conns.mu.Unlock()
	n := h.conns.byApp[appID]
	if max > 0 && n >= max {
		return false
	}
	h.conns.byApp[appID] = n + 1
	return true
}

// RemoveConnection uncounts a connection added by AddConnection.
func (h *Hub) RemoveConnection(appID string) {
	h.conns.mu.Lock()
	defer h.conns.mu.Unlock()
	if n := h.conns.byApp[appID] - 1; n > 0 {
		h.conns.byApp[appID] = n
	} else {
		delete(h.conns.byApp, appID)
	}
}

// Connections reports an app's connection count on this node.
func (h *Hub) Connections(appID string) int {
	h.conns.mu.Lock()
	defer h.conns.mu.Unlock()
	return h.conns.byApp[appID]
}
