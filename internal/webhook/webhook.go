// Package webhook sends an app's webhooks the way Pusher does: signed
// POSTs of {"time_ms","events"} batches, channel_vacated and member_removed
// held back for a delay that a re-occupation or re-join cancels, retried
// with backoff up to a limit, and never waited for by the hub.
//
// The Dispatcher is a hub.Observer. Observe only files an event (a queue
// under a short lock, or a timer for a held-back one); each target has a
// sender goroutine that cuts its queue into requests, and one settler
// goroutine claims the held-back events from the cluster when their delay
// is over, so that each is sent once however many nodes saw it.
package webhook

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/hub"
)

// Defaults of the node-wide settings.
const (
	DefaultBatchWindow    = 50 * time.Millisecond
	DefaultDelay          = 3 * time.Second
	DefaultRetryLimit     = 5 * time.Minute
	DefaultRequestTimeout = 4 * time.Second
	DefaultQueueSize      = 10000
	// MaxBatchEvents bounds the events of one request.
	MaxBatchEvents = 100
)

// Backoff between attempts: the first retry after about FirstRetry,
// doubling up to MaxRetryWait.
const (
	FirstRetry   = time.Second
	MaxRetryWait = time.Minute
)

// Drop reasons, the reason label of herald_webhooks_dropped_total.
const (
	DropQueueFull    = "queue_full"    // a target's queue (or the held-back events) at the bound
	DropRetryLimit   = "retry_limit"   // not delivered within the retry limit
	DropShutdown     = "shutdown"      // still queued or failing when the grace period ended
	DropSettleFailed = "settle_failed" // the broker could not say whether a held-back event was cancelled
)

// Request results, the result label of herald_webhook_requests_total.
const (
	ResultSuccess   = "success"    // a 2xx answer within the timeout
	ResultHTTPError = "http_error" // any other status
	ResultTimeout   = "timeout"    // no answer within the request timeout
	ResultError     = "error"      // refused connection, DNS, TLS...
)

// Recorder counts what the dispatcher does; the metrics implement it.
type Recorder interface {
	// Dropped counts n events of app dropped for reason.
	Dropped(appID, reason string, n int)
	// Request counts one request and its result.
	Request(appID, result string)
	// Retry counts one request made again after a failure.
	Retry(appID string)
	// Sent counts n events delivered.
	Sent(appID string, n int)
}

// Config configures a Dispatcher. Zero durations and sizes are defaults.
type Config struct {
	// Apps are the apps served; those without webhooks cost nothing.
	Apps []*apps.App
	// Settle claims a held-back transition when its delay is over
	// (hub.Hub.Settle).
	Settle func(ctx context.Context, e hub.Event) (bool, error)
	// Shared: a cluster node. On Close, held-back events then wait for
	// their delay (a client may come back on another node); on a single
	// node, which is going away with all its clients, they are sent at
	// once.
	Shared bool

	BatchWindow    time.Duration
	Delay          time.Duration
	RetryLimit     time.Duration
	RequestTimeout time.Duration
	// QueueSize bounds the events waiting per target, and the held-back
	// events of the node.
	QueueSize int

	Client   *http.Client // default: one of the dispatcher's own
	Clock    hub.Clock    // default: hub.SystemClock
	Rand     func() float64
	Recorder Recorder
	Log      *slog.Logger
}

// Dispatcher is the node's webhook sender: a hub.Observer.
type Dispatcher struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client
	byApp  map[string][]*target

	ctx    context.Context // ends when Close gives up
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closing  bool
	stop     chan struct{} // closed when Close starts: no more batching windows
	held     map[heldKey]*heldEvent
	due      []*heldEvent
	dueKick  chan struct{}
	heldWarn bool
	// settled is closed when the settler has ended; settlerDone is set
	// (under mu) just before.
	settled     chan struct{}
	settlerDone bool
}

var _ hub.Observer = (*Dispatcher)(nil)

// New builds the dispatcher and starts its goroutines (none for a node
// whose apps have no webhooks). Close stops them.
func New(cfg Config) *Dispatcher {
	if cfg.BatchWindow <= 0 {
		cfg.BatchWindow = DefaultBatchWindow
	}
	if cfg.Delay <= 0 {
		cfg.Delay = DefaultDelay
	}
	if cfg.RetryLimit <= 0 {
		cfg.RetryLimit = DefaultRetryLimit
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.Clock == nil {
		cfg.Clock = hub.SystemClock
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Recorder == nil {
		cfg.Recorder = nopRecorder{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	d := &Dispatcher{
		cfg:     cfg,
		log:     cfg.Log.With("component", "webhook"),
		client:  cfg.Client,
		byApp:   map[string][]*target{},
		stop:    make(chan struct{}),
		held:    map[heldKey]*heldEvent{},
		dueKick: make(chan struct{}, 1),
		settled: make(chan struct{}),
	}
	if d.client == nil {
		// Redirects are not followed: a webhook answered 3xx was not
		// delivered, and re-POSTing a signed body elsewhere is not ours
		// to decide.
		d.client = &http.Client{
			Transport:     newTransport(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	for _, a := range cfg.Apps {
		for _, w := range a.Webhooks {
			t := newTarget(d, a, w)
			d.byApp[a.ID] = append(d.byApp[a.ID], t)
			d.goRun(t.run)
		}
	}
	if len(d.byApp) > 0 {
		d.goRun(func() {
			defer close(d.settled)
			d.settler()
		})
	}
	return d
}

// maxAnswerHead bounds the head of a target's answer that is read: a
// status line and a few headers are all Herald looks at.
const maxAnswerHead = 64 << 10

// newTransport is net/http's default transport (proxy settings from the
// environment included) with the answer's head bounded by maxAnswerHead
// rather than net/http's 10 MiB, which every attempt of every target could
// make the node hold.
func newTransport() http.RoundTripper {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return http.DefaultTransport
	}
	t = t.Clone()
	t.MaxResponseHeaderBytes = maxAnswerHead
	return t
}

// Enabled reports whether any app has a webhook target.
func (d *Dispatcher) Enabled() bool { return len(d.byApp) > 0 }

// Wants reports whether the app has a webhook target: the hub asks the
// broker for the transitions of those apps only.
func (d *Dispatcher) Wants(appID string) bool { return len(d.byApp[appID]) > 0 }

func (d *Dispatcher) goRun(f func()) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		f()
	}()
}

// Observe implements hub.Observer: it files the event and never blocks.
func (d *Dispatcher) Observe(e hub.Event) {
	switch e.Type {
	case hub.EventTransition, hub.EventClientEvent, hub.EventCacheMiss:
	default:
		return
	}
	targets := d.byApp[e.AppID]
	if len(targets) == 0 {
		return
	}
	ev, ok := fromHub(e)
	if !ok {
		return
	}
	if e.Type == hub.EventTransition && e.Transition.Pending() {
		// Held only for a target that wants it: a claim is a broker
		// round trip.
		for _, t := range targets {
			if t.wants(&ev) {
				d.hold(e, ev)
				return
			}
		}
		return
	}
	d.route(e.AppID, ev)
}

// route hands an event to each of the app's targets that wants it.
func (d *Dispatcher) route(appID string, ev event) {
	for _, t := range d.byApp[appID] {
		if t.wants(&ev) {
			t.enqueue(ev)
		}
	}
}

// heldKey is one held-back transition: a channel's vacancy or a member's
// removal.
type heldKey struct {
	app, channel, user string
	kind               broker.TransitionKind
}

type heldEvent struct {
	key   heldKey
	hev   hub.Event
	ev    event
	timer hub.Timer
	tries int // failed claims
}

// hold keeps a vacancy or removal for the delay, then has the settler
// claim it.
func (d *Dispatcher) hold(e hub.Event, ev event) {
	k := heldKey{e.AppID, e.Channel, e.UserID, e.Transition}
	d.mu.Lock()
	defer d.mu.Unlock()
	if old := d.held[k]; old != nil {
		// A newer vacancy of the same channel: the broker cancelled the
		// older one when the channel was occupied again in between, so
		// settling it would fail anyway.
		old.timer.Stop()
		delete(d.held, k)
	}
	if d.closing && !d.cfg.Shared {
		// A node alone is going away with its clients: no one comes
		// back, so Close claims and sends it at once.
		d.due = append(d.due, &heldEvent{key: k, hev: e, ev: ev})
		kick(d.dueKick)
		return
	}
	if d.settlerDone || len(d.held)+len(d.due) >= d.cfg.QueueSize {
		reason := DropQueueFull
		if d.settlerDone {
			reason = DropShutdown
		}
		d.cfg.Recorder.Dropped(e.AppID, reason, 1)
		if !d.heldWarn {
			d.heldWarn = true
			d.log.Warn("webhook events dropped: too many held back", "app_id", e.AppID, "reason", reason, "bound", d.cfg.QueueSize)
		}
		return
	}
	d.heldWarn = false
	h := &heldEvent{key: k, hev: e, ev: ev}
	h.timer = d.cfg.Clock.AfterFunc(d.cfg.Delay, func() { d.release(h) })
	d.held[k] = h
}

// release moves a held event whose delay is over to the settler.
func (d *Dispatcher) release(h *heldEvent) {
	d.mu.Lock()
	if d.held[h.key] != h {
		d.mu.Unlock()
		return
	}
	delete(d.held, h.key)
	d.due = append(d.due, h)
	d.mu.Unlock()
	kick(d.dueKick)
}

// settler claims each due event from the broker and routes those that
// nobody cancelled. It ends when Close has released everything and the
// queue is empty.
func (d *Dispatcher) settler() {
	for {
		d.mu.Lock()
		batch := d.due
		d.due = nil
		done := d.closing && len(d.held) == 0 && len(batch) == 0
		if done {
			d.settlerDone = true
		}
		d.mu.Unlock()
		if done {
			return
		}
		for _, h := range batch {
			ctx, cancel := context.WithTimeout(d.ctx, d.cfg.RequestTimeout)
			ok, err := d.cfg.Settle(ctx, h.hev)
			cancel()
			switch {
			case err != nil && h.tries < settleTries && d.ctx.Err() == nil:
				// The broker may be back in a moment (a Redis failover):
				// the pending transition outlives a few retries.
				h.tries++
				d.mu.Lock()
				if d.held[h.key] == nil { // else a newer one: this one was cancelled
					d.held[h.key] = h
					h.timer = d.cfg.Clock.AfterFunc(settleRetry, func() { d.release(h) })
				}
				d.mu.Unlock()
			case err != nil:
				d.cfg.Recorder.Dropped(h.hev.AppID, DropSettleFailed, 1)
				d.log.Warn("webhook event dropped: could not claim it from the broker",
					"app_id", h.hev.AppID, "event", h.ev.Name, "err", err)
			case ok:
				d.route(h.hev.AppID, h.ev)
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-d.dueKick:
		case <-d.ctx.Done():
			d.mu.Lock()
			d.settlerDone = true
			d.mu.Unlock()
			return
		}
	}
}

// A claim the broker failed is retried settleTries times, settleRetry
// apart: well within what the broker keeps it (broker.PendingHold).
const (
	settleTries = 10
	settleRetry = time.Second
)

// Close sends what is pending within ctx: held-back events are released
// (on a single node at once, in a cluster when their delay is over), each
// target's queue is sent without waiting for a batching window, and
// failing deliveries are retried until ctx ends. What is left then is
// dropped and counted.
func (d *Dispatcher) Close(ctx context.Context) error {
	if !d.Enabled() {
		return nil
	}
	d.mu.Lock()
	if d.closing {
		d.mu.Unlock()
		return errors.New("webhook: closed twice")
	}
	d.closing = true
	close(d.stop)
	var early []*heldEvent
	for k, h := range d.held {
		if !d.cfg.Shared {
			h.timer.Stop()
			delete(d.held, k)
			early = append(early, h)
		}
	}
	d.due = append(d.due, early...)
	d.mu.Unlock()
	kick(d.dueKick)
	for _, ts := range d.byApp {
		for _, t := range ts {
			t.kick()
		}
	}
	done := make(chan struct{})
	go func() {
		// Held events in a cluster are due within the delay; once the
		// settler is done, the targets get no more events.
		<-d.settled
		for _, ts := range d.byApp {
			for _, t := range ts {
				t.finish()
			}
		}
		d.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		d.cancel()
		return nil
	case <-ctx.Done():
	}
	// Out of time: stop the timers, cancel the requests and the waits,
	// and count what is left.
	d.mu.Lock()
	for k, h := range d.held {
		h.timer.Stop()
		delete(d.held, k)
		d.cfg.Recorder.Dropped(h.hev.AppID, DropShutdown, 1)
	}
	for _, h := range d.due {
		d.cfg.Recorder.Dropped(h.hev.AppID, DropShutdown, 1)
	}
	d.due = nil
	d.mu.Unlock()
	d.cancel()
	<-done
	return ctx.Err()
}

func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

type nopRecorder struct{}

func (nopRecorder) Dropped(string, string, int) {}
func (nopRecorder) Request(string, string)      {}
func (nopRecorder) Retry(string)                {}
func (nopRecorder) Sent(string, int)            {}

// hasPrefixSuffix is the channel filter of a target.
func hasPrefixSuffix(name, prefix, suffix string) bool {
	return strings.HasPrefix(name, prefix) && strings.HasSuffix(name, suffix)
}
