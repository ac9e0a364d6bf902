package redisbroker

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/redis/rueidis"
)

// SetLocalCount implements broker.Occupancy. It records the count in the
// local mirror for the writer and, on a 0<->1 change, the interest for the
// subscriber; it does no I/O.
func (b *Broker) SetLocalCount(appID, channel string, n int) {
	k := chanKey{appID, channel}
	b.mu.Lock()
	old := b.counts[k]
	if n > 0 {
		b.counts[k] = n
	} else {
		delete(b.counts, k)
	}
	if old != n {
		b.dirtyCnt[k] = struct{}{}
	}
	switch {
	case old <= 0 && n > 0:
		b.interest[k] = &interest{readyCh: make(chan struct{})}
		b.subDirty[k] = struct{}{}
	case old > 0 && n <= 0:
		delete(b.interest, k)
		b.subDirty[k] = struct{}{}
	}
	b.mu.Unlock()
	if old != n {
		kick(b.writeKick)
		if old <= 0 || n <= 0 {
			kick(b.subKick)
		}
	}
}

// InterestReady implements broker.Occupancy: true once Redis confirmed
// this node's subscription to the channel.
func (b *Broker) InterestReady(appID, channel string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	in := b.interest[chanKey{appID, channel}]
	return in != nil && in.ready
}

// AwaitInterest implements broker.Occupancy.
func (b *Broker) AwaitInterest(ctx context.Context, appID, channel string) error {
	for {
		// readyCh is read under the lock: a lost pub/sub connection
		// replaces it (unready).
		b.mu.Lock()
		var ready chan struct{}
		in := b.interest[chanKey{appID, channel}]
		if in != nil {
			ready = in.readyCh
		}
		b.mu.Unlock()
		if in == nil {
			// No local subscriber: there is nothing to wait for, but the
			// channel's messages do not flow either.
			return nil
		}
		select {
		case <-ready:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-b.ctx.Done():
			return broker.ErrClosed
		case <-time.After(100 * time.Millisecond):
			// The subscription may have been lost and redone meanwhile
			// (a new readyCh): look again.
		}
	}
}

// subscriber owns the pub/sub connection: it subscribes to the control
// channel and to every channel with local interest, follows interest
// changes, and after a lost connection starts over on a new one.
func (b *Broker) subscriber() {
	select {
	case <-b.connected:
	case <-b.ctx.Done():
		return
	}
	b.clientMu.RLock()
	c := b.client
	b.clientMu.RUnlock()
	var ctlOnce sync.Once
	for attempt := 0; ; attempt++ {
		dc, release := c.Dedicate()
		lost := dc.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: b.onMessage})
		subscribed := map[chanKey]bool{}
		err := b.subscribeControl(dc)
		if err == nil {
			b.ctlLost.Store(false)
			ctlOnce.Do(func() { close(b.ctlReady) })
			b.mu.Lock()
			for k := range b.interest {
				b.subDirty[k] = struct{}{}
			}
			b.mu.Unlock()
			err = b.syncSubscriptions(dc, subscribed)
		}
		if err == nil {
			// Every channel of interest is subscribed again. Redis may
			// have come back empty: the heartbeat finds out now, rather
			// than at its time, and registers the node's state again.
			if b.subLost.Swap(false) {
				kick(b.keeperKick)
			}
			attempt = 0
			b.markUp()
		}
		for err == nil {
			select {
			case <-b.ctx.Done():
				release()
				return
			case err = <-lost:
				if err == nil {
					err = rueidis.ErrClosing
				}
			case <-b.subKick:
				err = b.syncSubscriptions(dc, subscribed)
			}
		}
		release()
		b.unready()
		b.noteFailure(err)
		if !b.sleep(backoff(attempt)) {
			return
		}
	}
}

func (b *Broker) subscribeControl(dc rueidis.DedicatedClient) error {
	ctx, cancel := context.WithTimeout(b.ctx, subTimeout)
	defer cancel()
	return dc.Do(ctx, dc.B().Subscribe().Channel(b.k.control()).Build()).Error()
}

// syncSubscriptions brings the connection's subscriptions in line with the
// interest recorded since the last call. rueidis returns from SUBSCRIBE
// once Redis confirmed it, so a channel is ready when its command returns.
func (b *Broker) syncSubscriptions(dc rueidis.DedicatedClient, subscribed map[chanKey]bool) error {
	for {
		b.mu.Lock()
		var subs, unsubs []chanKey
		for k := range b.subDirty {
			delete(b.subDirty, k)
			in := b.interest[k]
			switch {
			case in != nil && !subscribed[k]:
				subs = append(subs, k)
			case in != nil && !in.ready:
				// Withdrawn and declared again before we got to it: the
				// subscription never ended.
				in.markReady()
			case in == nil && subscribed[k]:
				unsubs = append(unsubs, k)
			}
			if len(subs)+len(unsubs) >= flushBatch {
				break
			}
		}
		more := len(b.subDirty) > 0
		b.mu.Unlock()
		if len(subs)+len(unsubs) == 0 {
			return nil
		}
		cmds := make(rueidis.Commands, 0, len(subs)+len(unsubs))
		for _, k := range subs {
			cmds = append(cmds, dc.B().Subscribe().Channel(b.k.pubsub(k.app, k.name)).Build())
		}
		for _, k := range unsubs {
			cmds = append(cmds, dc.B().Unsubscribe().Channel(b.k.pubsub(k.app, k.name)).Build())
		}
		ctx, cancel := context.WithTimeout(b.ctx, subTimeout)
		res := dc.DoMulti(ctx, cmds...)
		cancel()
		for _, r := range res {
			if err := r.Error(); err != nil {
				// The connection is in doubt: start over on a new one.
				return err
			}
		}
		b.mu.Lock()
		for _, k := range subs {
			subscribed[k] = true
			if in := b.interest[k]; in != nil && !in.ready {
				in.markReady()
			} else if in == nil {
				// Withdrawn meanwhile: the next round unsubscribes.
				b.subDirty[k] = struct{}{}
				more = true
			}
		}
		for _, k := range unsubs {
			delete(subscribed, k)
			if b.interest[k] != nil {
				b.subDirty[k] = struct{}{}
				more = true
			}
		}
		b.mu.Unlock()
		if !more {
			return nil
		}
	}
}

// unready marks every interest as not in effect, after the pub/sub
// connection was lost: those that were ready have lapsed.
func (b *Broker) unready() {
	b.mu.Lock()
	b.subLost.Store(true)
	b.ctlLost.Store(true)
	for _, in := range b.interest {
		if in.ready {
			in.ready = false
			in.lapsed = true
			in.readyCh = make(chan struct{})
		}
	}
	b.mu.Unlock()
}

var workerSeed = maphash.MakeSeed()

// onMessage runs on the pub/sub reader: it decodes and hands the message
// to the worker of its channel, so that one channel's messages keep their
// order. A full queue blocks the reader, which leaves the rest in the
// socket and in Redis's output buffer for this client: backpressure.
func (b *Broker) onMessage(pm rueidis.PubSubMessage) {
	m, err := broker.DecodeWire([]byte(pm.Message))
	if err != nil {
		if b.malformed.Add(1) == 1 {
			b.log.Warn("dropping undecodable cluster messages (a node of another release?)",
				"redis_channel", pm.Channel, "err", err)
		}
		return
	}
	var h maphash.Hash
	h.SetSeed(workerSeed)
	h.WriteString(m.AppID)
	h.WriteByte(0)
	h.WriteString(m.Channel)
	q := b.queues[h.Sum64()%workers]
	select {
	case q <- m:
	case <-b.ctx.Done():
	}
}

func (b *Broker) work(q chan broker.Message) {
	for {
		select {
		case m := <-q:
			(*b.handler.Load())(m)
		case <-b.ctx.Done():
			return
		}
	}
}
