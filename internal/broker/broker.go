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
}

// Handler receives every message published anywhere in the cluster. It is
// called for messages of one channel in publish order and must not block.
type Handler func(Message)

// Broker moves messages between nodes.
//
// Guarantees: a Publish that returns nil has been handed to every node's
// Handler, this node's included, or will be; messages published on one node
// for one channel reach each Handler in the order Publish was called.
type Broker interface {
	// SetHandler names the function that receives this node's share of every
	// published message. It is called once, before the first Publish.
	SetHandler(h Handler)
	// Publish delivers m to every node's Handler.
	Publish(ctx context.Context, m Message) error
	// LastEvent returns the last cached event of a cache channel, if it has
	// one that has not expired.
	LastEvent(ctx context.Context, appID, channel string) (Message, bool, error)
	PresenceManager
	// Ping checks that the broker can serve: a round trip to its backend,
	// if it has one. The node reports itself not ready while it fails.
	Ping(ctx context.Context) error
	// Close releases the broker's resources after the node has drained;
	// every later call fails with ErrClosed.
	Close(ctx context.Context) error
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
// user with several connections in one channel is one member.
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
}
