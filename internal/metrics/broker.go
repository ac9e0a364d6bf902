package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/internal/broker"
)

// op is one broker operation, the op label.
type op uint8

const (
	opPublish op = iota
	opLastEvent
	opJoin
	opLeave
	opMembers
	opMemberCount
	opSubscriptionCount
	opChannels
	opOnlineUsers
	opAwaitInterest
	opSettle
	opPublishBatch
	numOps
)

var opNames = [numOps]string{
	opPublish:   "publish",
	opLastEvent: "last_event",
	opJoin:      "join",
	opLeave:     "leave",
	opMembers:   "members",
	// The cluster queries and the wait for a channel's interest.
	opMemberCount:       "member_count",
	opSubscriptionCount: "subscription_count",
	opChannels:          "channels",
	opOnlineUsers:       "online_users",
	opAwaitInterest:     "await_interest",
	// Claiming a pending webhook transition (channel_vacated, member_removed).
	opSettle: "settle",
	// Several messages in one round trip (a trigger naming many channels,
	// a batch of events), timed once.
	opPublishBatch: "publish_batch",
}

// brokerSeries holds each operation's series, created with the Metrics.
type brokerSeries struct {
	duration [numOps]prometheus.Observer
	errors   [numOps]prometheus.Counter
}

func (b *brokerSeries) init(m *Metrics) {
	for o, name := range opNames {
		b.duration[o] = m.brokerDuration.WithLabelValues(name)
		b.errors[o] = m.brokerErrors.WithLabelValues(name)
	}
}

// done records one operation that started at start and ended with err.
// ErrMemberLimit is an answer, not a failure; nor is the caller's own
// cancellation (a client that left while its Join was under way).
func (b *brokerSeries) done(ctx context.Context, o op, start time.Time, err error) {
	b.duration[o].Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, broker.ErrMemberLimit) && !(errors.Is(err, context.Canceled) && ctx.Err() != nil) {
		b.errors[o].Inc()
	}
}

// InstrumentBroker returns b with every operation timed into
// herald_broker_operation_seconds{op} and its failures counted in
// herald_broker_errors_total{op}, op being publish, publish_batch,
// last_event, join, leave, members, member_count, subscription_count,
// channels, online_users, await_interest or settle. SetHandler and the non-blocking reports (SetLocalCount,
// SetLocalUser, InterestReady) pass through untimed: they do no I/O in the
// caller, and the handler's own work is the hub's.
func (m *Metrics) InstrumentBroker(b broker.Broker) broker.Broker {
	i := &instrumented{next: b, s: &m.broker}
	if bp, ok := b.(broker.BatchPublisher); ok {
		return instrumentedBatch{i, bp}
	}
	return i
}

// instrumented is a Broker that times another.
type instrumented struct {
	next broker.Broker
	s    *brokerSeries
}

var (
	_ broker.Broker         = (*instrumented)(nil)
	_ broker.BatchPublisher = instrumentedBatch{}
)

// Unwrap returns the instrumented broker, for callers that need more of it
// than the Broker interface (closing a Redis connection, say).
func (i *instrumented) Unwrap() broker.Broker { return i.next }

func (i *instrumented) SetHandler(h broker.Handler) { i.next.SetHandler(h) }

func (i *instrumented) Publish(ctx context.Context, msg broker.Message) error {
	start := time.Now()
	err := i.next.Publish(ctx, msg)
	i.s.done(ctx, opPublish, start, err)
	return err
}

// instrumentedBatch is an instrumented broker that takes batches, as the
// broker it times does. One that does not is not made to look as if it
// did: the hub would build batches only to have them published one by one.
type instrumentedBatch struct {
	*instrumented
	batch broker.BatchPublisher
}

// PublishBatch implements broker.BatchPublisher.
func (i instrumentedBatch) PublishBatch(ctx context.Context, ms []broker.Message) (int, error) {
	start := time.Now()
	n, err := i.batch.PublishBatch(ctx, ms)
	i.s.done(ctx, opPublishBatch, start, err)
	return n, err
}

func (i *instrumented) LastEvent(ctx context.Context, appID, channel string) (broker.Cached, bool, error) {
	start := time.Now()
	msg, ok, err := i.next.LastEvent(ctx, appID, channel)
	i.s.done(ctx, opLastEvent, start, err)
	return msg, ok, err
}

func (i *instrumented) Join(ctx context.Context, appID, channel, connID string, mem broker.Member, maxMembers int) (bool, error) {
	start := time.Now()
	first, err := i.next.Join(ctx, appID, channel, connID, mem, maxMembers)
	i.s.done(ctx, opJoin, start, err)
	return first, err
}

func (i *instrumented) Leave(ctx context.Context, appID, channel, connID, userID string) (bool, error) {
	start := time.Now()
	last, err := i.next.Leave(ctx, appID, channel, connID, userID)
	i.s.done(ctx, opLeave, start, err)
	return last, err
}

func (i *instrumented) Members(ctx context.Context, appID, channel string) ([]broker.Member, error) {
	start := time.Now()
	members, err := i.next.Members(ctx, appID, channel)
	i.s.done(ctx, opMembers, start, err)
	return members, err
}

func (i *instrumented) MemberCount(ctx context.Context, appID, channel string) (int, error) {
	start := time.Now()
	n, err := i.next.MemberCount(ctx, appID, channel)
	i.s.done(ctx, opMemberCount, start, err)
	return n, err
}

func (i *instrumented) SetLocalCount(appID, channel string, n int) {
	i.next.SetLocalCount(appID, channel, n)
}

func (i *instrumented) InterestReady(appID, channel string) bool {
	return i.next.InterestReady(appID, channel)
}

func (i *instrumented) AwaitInterest(ctx context.Context, appID, channel string) error {
	start := time.Now()
	err := i.next.AwaitInterest(ctx, appID, channel)
	i.s.done(ctx, opAwaitInterest, start, err)
	return err
}

func (i *instrumented) SubscriptionCount(ctx context.Context, appID, channel string) (int, error) {
	start := time.Now()
	n, err := i.next.SubscriptionCount(ctx, appID, channel)
	i.s.done(ctx, opSubscriptionCount, start, err)
	return n, err
}

func (i *instrumented) Channels(ctx context.Context, appID, prefix string) ([]broker.ChannelCount, error) {
	start := time.Now()
	cs, err := i.next.Channels(ctx, appID, prefix)
	i.s.done(ctx, opChannels, start, err)
	return cs, err
}

func (i *instrumented) SetLocalUser(appID, userID string, n int) {
	i.next.SetLocalUser(appID, userID, n)
}

func (i *instrumented) OnlineUsers(ctx context.Context, appID string, ids []string) ([]string, error) {
	start := time.Now()
	out, err := i.next.OnlineUsers(ctx, appID, ids)
	i.s.done(ctx, opOnlineUsers, start, err)
	return out, err
}

func (i *instrumented) SetTransitionHandler(h broker.TransitionHandler, apps func(appID string) bool) {
	i.next.SetTransitionHandler(h, apps)
}

func (i *instrumented) Settle(ctx context.Context, t broker.Transition) (bool, error) {
	start := time.Now()
	ok, err := i.next.Settle(ctx, t)
	i.s.done(ctx, opSettle, start, err)
	return ok, err
}

// Ping implements broker.Broker; health checks are not timed.
func (i *instrumented) Ping(ctx context.Context) error { return i.next.Ping(ctx) }

// Close implements broker.Broker.
func (i *instrumented) Close(ctx context.Context) error { return i.next.Close(ctx) }
