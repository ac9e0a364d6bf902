// Package broker is the contract between one Herald node's hub and the rest
// of a cluster: how a message published on any node reaches the subscribers
// on every node, and where presence and cache-channel state lives. The
// in-memory implementation serves a single node; a Redis implementation can
// take its place without the protocol front ends noticing.
package broker

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"time"
)

// Kind says what a cluster message asks of each node.
type Kind uint8

const (
	// KindEvent is an event for the subscribers of Channel.
	KindEvent Kind = iota
	// KindTerminate closes every connection signed in as UserID.
	KindTerminate
	// KindMemberAdded announces to a presence channel's subscribers that
	// UserID became a member; Data is the member's info (a JSON object, or
	// empty). Each front end encodes it its own way.
	KindMemberAdded
	// KindMemberRemoved announces that UserID is no longer a member.
	KindMemberRemoved
	// KindUserOnline tells every node that UserID signed in on some node
	// and had no other signed-in connection in the cluster.
	KindUserOnline
	// KindUserOffline tells every node that the last signed-in connection
	// of UserID in the cluster is gone.
	KindUserOffline
	// KindUnsubscribe removes the connections signed in as UserID from
	// Channel, on every node: the server API's unsubscribe. It is a
	// node-wide message, like KindTerminate.
	KindUnsubscribe
)

// Message is what crosses the cluster. It is a value: once published nobody
// modifies it.
type Message struct {
	Kind    Kind
	AppID   string
	Channel string
	Event   string
	// Data is the event's data. When DataJSON is false it is a string (the
	// REST API's form) and front ends encode it as a JSON string; when true it
	// is a JSON value forwarded verbatim (client events).
	Data     string
	DataJSON bool
	// UserID is the sender of a presence client event, or the user of a
	// KindTerminate or member message.
	UserID string
	// Exclude is the socket id that must not receive the event.
	Exclude string
	// Cache asks the broker to remember the event as the channel's last one.
	Cache bool
	// Tags are a publication's key/value annotations (the Centrifugo server
	// API's tags). Pusher publications carry none. A nil and an empty map
	// are the same message.
	Tags map[string]string
}

// Equal reports whether m and o are the same message, field by field.
// Message holds a map and cannot be compared with ==.
func (m *Message) Equal(o *Message) bool {
	return m.Kind == o.Kind && m.AppID == o.AppID && m.Channel == o.Channel &&
		m.Event == o.Event && m.Data == o.Data && m.DataJSON == o.DataJSON &&
		m.UserID == o.UserID && m.Exclude == o.Exclude && m.Cache == o.Cache &&
		maps.Equal(m.Tags, o.Tags)
}

// Handler receives this node's share of the messages published anywhere in
// the cluster: those for channels the node has declared interest in (see
// Occupancy.SetLocalCount) and every node-wide message (KindTerminate,
// KindUserOnline, KindUserOffline, KindUnsubscribe). It is called for messages of one channel
// in publish order and must not block.
type Handler func(Message)

// Broker moves messages between nodes and holds the state that is shared by
// the cluster: presence, cached events, occupancy and signed-in users.
//
// Guarantees: a Publish that returns nil has been handed to the Handler of
// every node interested in the channel, this node's included, or will be;
// messages published on one node for one channel reach each Handler in the
// order Publish was called, and a publisher that waits for Publish to return
// before publishing through another node keeps its order too.
//
// Methods without a context never block: they record what the hub tells
// them and do any I/O in the background. Methods with one may wait on the
// backend, and front ends call them off the transport's loop.
type Broker interface {
	// SetHandler names the function that receives this node's share of every
	// published message. It is called once, before the first Publish.
	SetHandler(h Handler)
	// Publish delivers m to every interested node's Handler.
	Publish(ctx context.Context, m Message) error
	// LastEvent returns the last cached event of a cache channel and the
	// time it has left, if it has one that has not expired.
	LastEvent(ctx context.Context, appID, channel string) (Cached, bool, error)
	PresenceManager
	Occupancy
	UserRegistry
	Transitions
	// Ping checks that the broker can serve: a round trip to its backend,
	// if it has one. The node reports itself not ready while it fails.
	Ping(ctx context.Context) error
	// Close releases the broker's resources after the node has drained:
	// a shared backend forgets this node's presence members, counts and
	// users at once, as if the node's connections had all left. Every later
	// call fails with ErrClosed.
	Close(ctx context.Context) error
}

// BatchPublisher is a Broker that publishes several messages in one go:
// one round trip to its backend for all of them, rather than one each.
type BatchPublisher interface {
	// PublishBatch publishes ms in order, as that many Publish calls
	// would, with the same guarantees. It returns len(ms) and nil, or how
	// many of ms, from the first, were published and the error of the next
	// one; the messages after that one may or may not have been published,
	// as a Publish that fails may or may not have been.
	PublishBatch(ctx context.Context, ms []Message) (int, error)
}

// PublishEach publishes ms through b one at a time, stopping at the first
// failure, with PublishBatch's results: for brokers that batch nothing, and
// batches a BatchPublisher cannot send in one go.
func PublishEach(ctx context.Context, b Broker, ms []Message) (int, error) {
	for i := range ms {
		if err := b.Publish(ctx, ms[i]); err != nil {
			return i, err
		}
	}
	return len(ms), nil
}

// Cached is a cache channel's last event and how long it is remembered.
type Cached struct {
	Message
	TTL time.Duration
}

// LocalCounts is the node's own tally of its subscribers, which the hub
// keeps.
type LocalCounts interface {
	// SubscriptionCount is the channel's local subscriber count.
	SubscriptionCount(appID, channel string) int
	// Channels lists the app's locally occupied channels whose names
	// start with prefix, sorted by name.
	Channels(appID, prefix string) []ChannelCount
}

// LocalCountsUser is a broker whose cluster is the node alone: rather than
// keep a copy of every channel's count, it answers from the hub's. The
// hub hands itself over when it is made, before any count is reported.
type LocalCountsUser interface {
	UseLocalCounts(LocalCounts)
}

// Occupancy is where the cluster's subscriber counts live. Each node reports
// its own local count per channel; queries answer for the whole cluster.
type Occupancy interface {
	// SetLocalCount records that this node now has n local subscribers of
	// the channel. Going from 0 to more declares the node's interest in
	// the channel's messages, and going back to 0 withdraws it: a node
	// receives a channel's messages only while it has local subscribers.
	// It never blocks.
	SetLocalCount(appID, channel string, n int)
	// InterestReady reports whether this node's interest in the channel is
	// in effect: every message published from now on reaches the Handler.
	// A single-node broker always is; a shared one after the backend
	// confirmed the subscription. It never blocks.
	InterestReady(appID, channel string) bool
	// AwaitInterest waits until InterestReady, for a front end that
	// confirms a subscription only once the channel's messages flow.
	AwaitInterest(ctx context.Context, appID, channel string) error
	// SubscriptionCount is the channel's subscriber count summed over
	// every node.
	SubscriptionCount(ctx context.Context, appID, channel string) (int, error)
	// Channels lists the app's channels with subscribers on any node whose
	// names start with prefix, with their cluster-wide counts, sorted by
	// name.
	Channels(ctx context.Context, appID, prefix string) ([]ChannelCount, error)
}

// ChannelCount is one occupied channel and its subscriber count.
type ChannelCount struct {
	Name          string
	Subscriptions int
}

// UserRegistry knows which users are signed in anywhere in the cluster, for
// watchlists. Each node reports its own local connection count per user;
// when a user's count over the cluster goes from 0 to more the broker
// delivers KindUserOnline to every node's Handler, and KindUserOffline when
// it goes back to 0, each exactly once per transition.
type UserRegistry interface {
	// SetLocalUser records that this node now has n connections signed in
	// as userID. It never blocks.
	SetLocalUser(appID, userID string, n int)
	// OnlineUsers returns those of ids that are signed in on any node, in
	// the order given.
	OnlineUsers(ctx context.Context, appID string, ids []string) ([]string, error)
}

// ErrClosed is returned by a broker's operations after Close.
var ErrClosed = errors.New("broker: closed")

// Member is one user in a presence channel.
type Member struct {
	UserID string
	Info   json.RawMessage // raw JSON object, or nil
}

// ErrMemberLimit is returned by Join when the channel already holds its
// maximum number of distinct users.
var ErrMemberLimit = errors.New("presence channel member limit reached")

// PresenceManager tracks presence membership by user, not by connection: a
// user with several connections in one channel is one member, however many
// nodes they are on. A shared broker ties each connection to its node: when
// a node stops refreshing its registration (it crashed), a surviving node
// removes its connections and publishes KindMemberRemoved, once, for each
// user that lost its last connection.
type PresenceManager interface {
	// Join records connection connID of member m in channel. first is true
	// when the user had no other connection there, i.e. the user is a new
	// member. If the channel already holds maxMembers distinct users and m is
	// not one of them, Join returns ErrMemberLimit and records nothing.
	Join(ctx context.Context, appID, channel, connID string, m Member, maxMembers int) (first bool, err error)
	// Leave removes connection connID. last is true when it was the user's
	// last connection in the channel, i.e. the member is gone.
	Leave(ctx context.Context, appID, channel, connID, userID string) (last bool, err error)
	// Members lists the distinct users of the channel, in join order.
	Members(ctx context.Context, appID, channel string) ([]Member, error)
	// MemberCount is the number of distinct users of the channel, without
	// reading the member list.
	MemberCount(ctx context.Context, appID, channel string) (int, error)
}
