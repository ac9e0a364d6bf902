package hub

import (
	"sync"

	"github.com/heraldhq/herald/internal/broker"
)

// Pending is a subscription whose confirmation waits for off-loop work (a
// presence join, a cache lookup). It is in the channel's subscriber list
// from the start, so nothing published meanwhile is missed, but it holds
// what it receives until Activate: the client must see the confirmation
// before the channel's first event.
type Pending struct {
	hub   *Hub
	key   chanKey
	final Subscriber

	mu       sync.Mutex
	held     []*Publication
	overflow bool
}

// maxHeld bounds the publications one pending subscription holds. A
// confirmation is one broker round trip away; a channel busy enough to
// publish more than this meanwhile makes the subscriber a slow consumer.
const maxHeld = 256

// SocketID implements Subscriber.
func (p *Pending) SocketID() string { return p.final.SocketID() }

// Deliver implements Subscriber: it holds the publication.
func (p *Pending) Deliver(pub *Publication) {
	p.mu.Lock()
	if len(p.held) < maxHeld {
		p.held = append(p.held, pub)
	} else {
		p.overflow = true
	}
	p.mu.Unlock()
}

// SubscribePending subscribes s to a channel through a holder: publications
// are kept until Activate. It reports whether a subscription was added, as
// Subscribe does.
func (h *Hub) SubscribePending(appID, name string, s Subscriber) (*Pending, bool) {
	p := &Pending{hub: h, key: chanKey{appID, name}, final: s}
	if _, added := h.Subscribe(appID, name, p); !added {
		return nil, false
	}
	return p, true
}

// SubscribeReady subscribes s to a channel, confirming it at once when
// this node already receives the channel's messages from the whole
// cluster: then it calls confirm as SubscribeThen does and returns a nil
// Pending. Otherwise s is subscribed through a holder, which it returns,
// for the caller to Activate once AwaitInterest returns. Readiness is
// judged under the channel's lock, after the broker heard the new count:
// a check made before subscribing could see the interest of a channel
// whose last local subscriber is leaving on another loop, withdrawn and
// declared anew by the time s is in, and confirm s while the channel's
// messages do not flow. added is false, and nothing is done, when s was
// already subscribed.
func (h *Hub) SubscribeReady(appID, name string, s Subscriber, confirm func()) (p *Pending, added bool) {
	_, p, added = h.subscribe(appID, name, s, confirm, true)
	return p, added
}

// Activate confirms the subscription: with the channel's deliveries held
// back, it calls confirm (which sends the confirmation), hands s everything
// held, in order, and puts s in the holder's place, so that every later
// publication goes to s directly. It reports false, having done nothing,
// when the holder is no longer subscribed (the client left meanwhile), and
// closes s's connection as a slow consumer when too much was held.
func (p *Pending) Activate(confirm func()) bool {
	h := p.hub
	sh := h.shard(p.key)
	sh.mu.RLock()
	ch := sh.get(p.key)
	sh.mu.RUnlock()
	if ch == nil {
		return false
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	i := ch.pos(p)
	if i < 0 {
		return false
	}
	// Nothing is added to what is held meanwhile: publishing to the
	// channel needs the lock held here.
	confirm()
	p.mu.Lock()
	held, overflow := p.held, p.overflow
	p.held = nil
	p.mu.Unlock()
	if overflow {
		h.slowConsumers.Add(1)
		if cl, ok := p.final.(Client); ok {
			cl.CloseWith(ReasonSlowConsumer)
		}
	}
	for _, pub := range held {
		p.final.Deliver(pub)
	}
	ch.subs[i] = p.final
	if ch.index != nil {
		delete(ch.index, p)
		ch.index[p.final] = i
	}
	return true
}

// Holding reports whether m is among the publications held for the
// subscriber, for a confirm function deciding whether to send a cache
// channel's last event: when that event was published after the
// subscription began it is held, and comes right after the confirmation.
func (p *Pending) Holding(m broker.Message) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pub := range p.held {
		if pub.Message.Equal(&m) {
			return true
		}
	}
	return false
}
