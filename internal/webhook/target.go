package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
)

// target is one webhook URL of one app: its filter, its queue of events
// not yet in a request, and the sender goroutine that empties it one
// request at a time, so that the events of a channel arrive in order.
type target struct {
	d       *Dispatcher
	appID   string
	key     string
	secret  string
	url     string
	headers http.Header
	types   map[string]bool // nil: every type
	prefix  string
	suffix  string

	mu       sync.Mutex
	queue    []*event
	counts   map[string]*event // queued subscription_count by channel, replaced in place
	misses   map[string]bool   // channels with a cache_miss queued
	finished bool              // no more events will come
	warned   bool              // a burst of drops was logged
	wake     chan struct{}
}

func newTarget(d *Dispatcher, a *apps.App, w apps.Webhook) *target {
	t := &target{
		d: d, appID: a.ID, key: a.Key, secret: a.Secret, url: w.URL,
		headers: http.Header{}, prefix: w.ChannelPrefix, suffix: w.ChannelSuffix,
		counts: map[string]*event{}, misses: map[string]bool{}, wake: make(chan struct{}, 1),
	}
	for k, v := range w.Headers {
		t.headers.Set(k, v)
	}
	if len(w.EventTypes) > 0 {
		t.types = map[string]bool{}
		for _, n := range w.EventTypes {
			t.types[n] = true
		}
	}
	return t
}

// wants applies the target's filters.
func (t *target) wants(ev *event) bool {
	return (t.types == nil || t.types[ev.Name]) && hasPrefixSuffix(ev.Channel, t.prefix, t.suffix)
}

// enqueue adds an event, or drops it when the queue is full. A
// subscription_count replaces the one of its channel still queued: only
// the latest count matters. A cache_miss of a channel that has one queued
// is the same news: it is left out, as Pusher de-duplicates the misses of
// a channel's subscribers. Otherwise every subscribe to an empty cache
// channel, which one client can repeat as fast as it likes, would be a
// webhook event, and enough of them would fill the queue and have the
// app's other events dropped.
func (t *target) enqueue(ev event) {
	t.mu.Lock()
	if ev.Name == nameSubscriptionCount {
		if q := t.counts[ev.Channel]; q != nil {
			q.SubscriptionCount = ev.SubscriptionCount
			t.mu.Unlock()
			return
		}
	}
	if ev.Name == nameCacheMiss && t.misses[ev.Channel] {
		t.mu.Unlock()
		return
	}
	if len(t.queue) >= t.d.cfg.QueueSize {
		warn := !t.warned
		t.warned = true
		t.mu.Unlock()
		t.d.cfg.Recorder.Dropped(t.appID, DropQueueFull, 1)
		if warn {
			t.d.log.Warn("webhook queue full, dropping events", "app_id", t.appID, "bound", t.d.cfg.QueueSize)
		}
		return
	}
	t.warned = false
	p := &ev
	t.queue = append(t.queue, p)
	if ev.Name == nameOccupied {
		t.occupiedFirst()
	}
	if ev.Name == nameSubscriptionCount {
		t.counts[ev.Channel] = p
	}
	if ev.Name == nameCacheMiss {
		t.misses[ev.Channel] = true
	}
	t.mu.Unlock()
	t.kick()
}

// occupiedFirst moves the channel_occupied just queued before the other
// events of its channel still queued. In a cluster the occupation is
// decided when the node's count reaches the shared state, which can be
// just after the first member's join was: the backend still hears of the
// channel before its members, as from Pusher. Only the last MaxBatchEvents
// are looked at: what is older is about to leave.
func (t *target) occupiedFirst() {
	q := t.queue
	last := len(q) - 1
	at := last
	for i := last - 1; i >= max(0, last-MaxBatchEvents); i-- {
		if q[i].Channel == q[last].Channel {
			at = i
		}
	}
	if at < last {
		occ := q[last]
		copy(q[at+1:], q[at:last])
		q[at] = occ
	}
}

func (t *target) kick() { kick(t.wake) }

// finish tells the sender that nothing more will be queued: it ends once
// the queue is empty.
func (t *target) finish() {
	t.mu.Lock()
	t.finished = true
	t.mu.Unlock()
	t.kick()
}

// cut takes up to MaxBatchEvents queued events.
func (t *target) cut() (batch []*event, finished bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := min(len(t.queue), MaxBatchEvents)
	batch = slices.Clone(t.queue[:n])
	clear(t.queue[:n])
	t.queue = t.queue[n:]
	if len(t.queue) == 0 {
		t.queue = nil
	}
	for _, ev := range batch {
		if ev.Name == nameSubscriptionCount && t.counts[ev.Channel] == ev {
			delete(t.counts, ev.Channel)
		}
		if ev.Name == nameCacheMiss {
			delete(t.misses, ev.Channel)
		}
	}
	return batch, t.finished
}

func (t *target) queued() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.queue)
}

// run is the sender: it waits for events, lets the batching window fill
// the request (not once Close began), and delivers.
func (t *target) run() {
	d := t.d
	idle := true
	for {
		if idle {
			if t.queued() == 0 {
				t.mu.Lock()
				finished := t.finished
				t.mu.Unlock()
				if finished {
					return
				}
				select {
				case <-t.wake:
				case <-d.ctx.Done():
					if n := t.dropAll(); n > 0 {
						d.cfg.Recorder.Dropped(t.appID, DropShutdown, n)
					}
					return
				}
				continue
			}
			if !d.closingNow() {
				// The first event of a request: gather the window's others.
				d.sleep(d.cfg.BatchWindow, d.stop)
			}
		}
		batch, _ := t.cut()
		if len(batch) == 0 {
			idle = true
			continue
		}
		if d.ctx.Err() != nil {
			d.cfg.Recorder.Dropped(t.appID, DropShutdown, len(batch)+t.dropAll())
			return
		}
		t.deliver(batch)
		// What came meanwhile has waited long enough: it goes at once.
		idle = false
	}
}

// dropAll empties the queue, returning how many events it held.
func (t *target) dropAll() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.queue)
	t.queue = nil
	clear(t.counts)
	clear(t.misses)
	return n
}

// deliver sends one request until a 2xx, the retry limit or the end of
// the grace period, always with the same body and signature.
func (t *target) deliver(batch []*event) {
	d := t.d
	body := encodeBody(d.cfg.Clock.Now(), batch)
	sig := auth.WebhookSignature(t.secret, body)
	start := d.cfg.Clock.Now()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			d.cfg.Recorder.Retry(t.appID)
		}
		res := t.post(body, sig)
		d.cfg.Recorder.Request(t.appID, res)
		if res == ResultSuccess {
			d.cfg.Recorder.Sent(t.appID, len(batch))
			return
		}
		wait := Backoff(attempt, d.cfg.Rand)
		if d.cfg.Clock.Now().Add(wait).Sub(start) > d.cfg.RetryLimit {
			d.cfg.Recorder.Dropped(t.appID, DropRetryLimit, len(batch))
			d.log.Warn("webhook not delivered within the retry limit; dropped",
				"app_id", t.appID, "events", len(batch), "attempts", attempt+1, "last_result", res)
			return
		}
		if attempt == 0 {
			// Counted in the metrics; a receiver that fails often would
			// make this line too common for info.
			d.log.Debug("webhook delivery failed; retrying", "app_id", t.appID, "result", res)
		}
		if !d.sleep(wait, nil) {
			d.cfg.Recorder.Dropped(t.appID, DropShutdown, len(batch))
			return
		}
	}
}

// post makes one attempt.
func (t *target) post(body []byte, sig string) string {
	d := t.d
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return ResultError
	}
	for k, v := range t.headers {
		req.Header[k] = v
	}
	// Exactly this: the Node SDK's check refuses a charset suffix.
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Pusher-Key", t.key)
	req.Header.Set("X-Pusher-Signature", sig)
	resp, err := d.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return ResultTimeout
		}
		return ResultError
	}
	// The body is read within the attempt's timeout too. net/http ends a
	// body's read when ctx ends, except a 101 Switching Protocols', whose
	// connection it hands over to the caller: a target answering 101 and
	// then nothing would hold this sender, and Close, for as long as it
	// liked.
	stop := context.AfterFunc(ctx, func() { resp.Body.Close() })
	// Read a little so that the connection can be reused; a receiver's
	// answer is not ours to keep.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	stop()
	resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return ResultSuccess
	}
	return ResultHTTPError
}

// Backoff is the wait after failed attempt number attempt (0 for the
// first): FirstRetry doubling each time up to MaxRetryWait, of which a
// random half (rnd in [0,1)) is taken off so that the targets of many
// apps failing together do not retry in step.
func Backoff(attempt int, rnd func() float64) time.Duration {
	d := FirstRetry << min(attempt, 10)
	d = min(d, MaxRetryWait)
	return d/2 + time.Duration(rnd()*float64(d/2))
}

// closingNow reports whether Close has begun.
func (d *Dispatcher) closingNow() bool {
	select {
	case <-d.stop:
		return true
	default:
		return false
	}
}

// sleep waits dur on the dispatcher's clock; it returns false when the
// dispatcher's context ended first, and true early when interrupt closes.
func (d *Dispatcher) sleep(dur time.Duration, interrupt <-chan struct{}) bool {
	fired := make(chan struct{})
	tm := d.cfg.Clock.AfterFunc(dur, func() { close(fired) })
	defer tm.Stop()
	select {
	case <-fired:
		return true
	case <-interrupt:
		return true
	case <-d.ctx.Done():
		return false
	}
}
