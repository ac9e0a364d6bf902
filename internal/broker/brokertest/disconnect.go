package brokertest

import (
	"context"
	"errors"

	"github.com/heraldhq/herald/internal/broker"
)

// ErrDisconnected is what every operation of a disconnected Faulty
// returns.
var ErrDisconnected = errors.New("brokertest: broker disconnected")

// Disconnect makes every later operation that may wait on the backend
// fail with ErrDisconnected, at once, as a broker that lost its backend
// does: Publish, LastEvent, Ping, the presence calls, the cluster queries
// and AwaitInterest. The non-blocking reports (SetLocalCount, SetLocalUser,
// InterestReady) pass through, as a shared broker records them to replay
// once reconnected. Reconnect undoes it; FailOp settings are kept apart.
func (f *Faulty) Disconnect() { f.down.Store(true) }

// Reconnect ends a Disconnect.
func (f *Faulty) Reconnect() { f.down.Store(false) }

// Disconnected reports whether the broker is disconnected.
func (f *Faulty) Disconnected() bool { return f.down.Load() }

// MemberCount implements broker.PresenceManager.
func (f *Faulty) MemberCount(ctx context.Context, appID, channel string) (int, error) {
	if f.down.Load() {
		return 0, ErrDisconnected
	}
	return f.Broker.MemberCount(ctx, appID, channel)
}

// SubscriptionCount implements broker.Occupancy.
func (f *Faulty) SubscriptionCount(ctx context.Context, appID, channel string) (int, error) {
	if f.down.Load() {
		return 0, ErrDisconnected
	}
	return f.Broker.SubscriptionCount(ctx, appID, channel)
}

// Channels implements broker.Occupancy.
func (f *Faulty) Channels(ctx context.Context, appID, prefix string) ([]broker.ChannelCount, error) {
	if f.down.Load() {
		return nil, ErrDisconnected
	}
	return f.Broker.Channels(ctx, appID, prefix)
}

// AwaitInterest implements broker.Occupancy.
func (f *Faulty) AwaitInterest(ctx context.Context, appID, channel string) error {
	if f.down.Load() {
		return ErrDisconnected
	}
	return f.Broker.AwaitInterest(ctx, appID, channel)
}

// OnlineUsers implements broker.UserRegistry.
func (f *Faulty) OnlineUsers(ctx context.Context, appID string, ids []string) ([]string, error) {
	if f.down.Load() {
		return nil, ErrDisconnected
	}
	return f.Broker.OnlineUsers(ctx, appID, ids)
}
