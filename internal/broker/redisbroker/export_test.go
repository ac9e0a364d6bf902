package redisbroker

// Crash stops the broker as a crash would: heartbeats end and the
// connection drops, without any cleanup.
func (b *Broker) Crash() {
	if b.closed.Swap(true) {
		return
	}
	b.cancel()
	b.wg.Wait()
	b.clientMu.RLock()
	c := b.client
	b.clientMu.RUnlock()
	if c != nil {
		c.Close()
	}
}

// ControlChannel is the Redis channel of node-wide messages.
func (b *Broker) ControlChannel() string { return b.k.control() }

// PubSubChannel is the Redis channel of an app channel's messages.
func (b *Broker) PubSubChannel(app, ch string) string { return b.k.pubsub(app, ch) }

// Keys exposes key naming to the escaping tests.
func (b *Broker) Keys(app, ch string) []string {
	p := b.k.presence(app, ch)
	return append([]string{b.k.pubsub(app, ch), b.k.cache(app, ch), b.k.occ(app, ch), b.k.user(app, ch)}, p.list()...)
}

var (
	SplitSegs = splitSegs
	Segs      = segs
)

// LuaSegs is the Lua twin of splitSegs.
const LuaSegs = luaSegs

// PendingLeaves is how many failed presence leaves wait for a retry.
func (b *Broker) PendingLeaves() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.leaves)
}

// OwnReadyChannels is how many interests hold a readiness channel of their
// own: those not yet ready.
func (b *Broker) OwnReadyChannels() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, in := range b.interest {
		if in.readyCh != readyClosed {
			n++
		}
	}
	return n
}

// MarkUnsure records a presence join as failed in a way that may have
// applied it (a timeout), as Join does.
func (b *Broker) MarkUnsure(app, channel, conn string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.unsure[presKey{app, channel, conn}] = struct{}{}
}

// ClaimKey is the key of the claim of the broker's node id.
func (b *Broker) ClaimKey() string { return b.k.claim(b.node) }

// Token is the broker's claim token.
func (b *Broker) Token() string { return b.token }
