package hub

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/heraldhq/herald/internal/broker"
)

// EventType names one kind of lifecycle event.
type EventType uint8

const (
	// EventConnectionOpened: a connection was admitted (SocketID, Protocol).
	EventConnectionOpened EventType = iota + 1
	// EventConnectionClosed: an admitted connection ended (SocketID, Reason).
	EventConnectionClosed
	// EventConnectionRefused: a connection was refused at admission (Reason).
	EventConnectionRefused
	// EventChannelOccupied: a channel got its first subscriber on this node.
	EventChannelOccupied
	// EventChannelVacated: a channel lost its last subscriber on this node.
	EventChannelVacated
	// EventSubscriptionCount: a channel's local subscriber count changed to
	// Count; Delta is +1 or -1.
	EventSubscriptionCount
	// EventSubscriptionRefused: a subscription was refused (Refusal).
	EventSubscriptionRefused
	// EventMemberAdded: a user became a member of a presence channel
	// (UserID), cluster-wide.
	EventMemberAdded
	// EventMemberRemoved: a user's last connection left a presence channel.
	EventMemberRemoved
	// EventClientEvent: a client published Name with Data on Channel
	// (SocketID; UserID on presence channels).
	EventClientEvent
	// EventCacheMiss: a subscriber of a cache channel found no cached event.
	EventCacheMiss
	// EventPublished: an event was published on this node (Source).
	EventPublished
	// EventDelivered: one publication was handed to Count local connections.
	EventDelivered
	// EventTransition: a cluster-wide change of occupancy or membership
	// (Transition; Count for broker.TransitionCount, UserID for members,
	// Epoch for a pending one, which Hub.Settle claims), emitted on the one
	// node the broker reported it to. Only with Config.Transitions.
	EventTransition
)

// Source says where a published event came from.
type Source uint8

const (
	SourceREST Source = iota + 1
	SourceClient
)

func (s Source) String() string {
	switch s {
	case SourceREST:
		return "rest"
	case SourceClient:
		return "client"
	}
	return "unknown"
}

// Refusal says why a subscription was refused; a small closed set, for
// metrics labels.
type Refusal uint8

const (
	RefusedInvalid     Refusal = iota + 1 // malformed request or channel name
	RefusedAuth                           // missing or bad signature or token
	RefusedLimit                          // a per-connection or per-channel limit
	RefusedUnavailable                    // the broker failed
)

func (r Refusal) String() string {
	switch r {
	case RefusedInvalid:
		return "invalid"
	case RefusedAuth:
		return "auth"
	case RefusedLimit:
		return "limit"
	case RefusedUnavailable:
		return "unavailable"
	}
	return "unknown"
}

// Event is one lifecycle event. Fields beyond Type and AppID are set as the
// type's comment says. An Event is a value: observers may keep it.
type Event struct {
	Type     EventType
	AppID    string
	Channel  string
	SocketID string
	UserID   string
	// Name and Data are a client event's name and data (the JSON text the
	// client sent).
	Name string
	Data string
	// Protocol is the front end of an opened connection ("pusher", ...).
	Protocol string
	Reason   CloseReason
	Refusal  Refusal
	Source   Source
	// Count is a subscription count or a delivery count; Delta the change.
	Count int
	Delta int
	// Transition and Epoch describe an EventTransition.
	Transition broker.TransitionKind
	Epoch      int64
}

// Observer receives the hub's events. Observe is called synchronously, on
// whatever goroutine caused the event (possibly a transport loop, with hub
// locks held): it must not block and must be cheap. An observer with real
// work to do (an HTTP call, a log line) wraps itself in NewBuffered.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

func (f ObserverFunc) Observe(e Event) { f(e) }

// observers is the hub's fixed list, set at start.
type observers []Observer

func (o observers) emit(e Event) {
	for _, x := range o {
		x.Observe(e)
	}
}

// Buffered hands events to a slower observer through a bounded queue served
// by one goroutine. When the queue is full the event is dropped and counted:
// the hub never waits for an observer.
type Buffered struct {
	name  string
	next  Observer
	log   *slog.Logger
	queue chan Event
	drops atomic.Uint64
	// warned is set while a burst of drops is being dropped, so that the
	// burst is logged once.
	warned atomic.Bool
	done   chan struct{}

	mu     sync.RWMutex // closed and the queue's closing
	closed bool
}

// NewBuffered returns an Observer that queues up to size events for next,
// and starts the goroutine that feeds it. Close stops that goroutine after
// the queue is drained.
func NewBuffered(name string, size int, next Observer, log *slog.Logger) *Buffered {
	if log == nil {
		log = slog.Default()
	}
	b := &Buffered{name: name, next: next, log: log, queue: make(chan Event, size), done: make(chan struct{})}
	go b.run()
	return b
}

// Observe implements Observer: it never blocks.
func (b *Buffered) Observe(e Event) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		b.drops.Add(1)
		return
	}
	select {
	case b.queue <- e:
		b.warned.Store(false)
	default:
		b.drops.Add(1)
		if !b.warned.Swap(true) {
			b.log.Warn("observer queue full, dropping events", "observer", b.name, "queue", cap(b.queue))
		}
	}
}

func (b *Buffered) run() {
	defer close(b.done)
	for e := range b.queue {
		b.next.Observe(e)
	}
}

// Name is the observer's name, the label of its drop count.
func (b *Buffered) Name() string { return b.name }

// Drops is how many events were dropped because the queue was full.
func (b *Buffered) Drops() uint64 { return b.drops.Load() }

// Close stops accepting events, lets the queued ones through and returns
// once they are, or when done is closed.
func (b *Buffered) Close(done <-chan struct{}) {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	select {
	case <-b.done:
	case <-done:
	}
}

// SubscriptionRefused records a refused subscription.
func (h *Hub) SubscriptionRefused(appID string, why Refusal) {
	h.emit(Event{Type: EventSubscriptionRefused, AppID: appID, Refusal: why})
}

// transition is the broker's transition handler: each one becomes an
// EventTransition.
func (h *Hub) transition(t broker.Transition) {
	h.emit(Event{Type: EventTransition, AppID: t.AppID, Channel: t.Channel, UserID: t.UserID,
		Count: t.Count, Transition: t.Kind, Epoch: t.Epoch})
}

// Settle claims a pending EventTransition (a vacancy or a member's
// removal) once its delay has passed: true when nothing cancelled it and
// nobody claimed it before, anywhere in the cluster. It may wait on the
// broker.
func (h *Hub) Settle(ctx context.Context, e Event) (bool, error) {
	return h.broker.Settle(ctx, broker.Transition{Kind: e.Transition, AppID: e.AppID, Channel: e.Channel,
		UserID: e.UserID, Count: e.Count, Epoch: e.Epoch})
}
