// Package centrifugo serves the Centrifugo client protocol (protocol v2,
// JSON over WebSocket, as centrifuge-js 5.x speaks it) as a front end on the
// hub: the wire format and Centrifugo's policy (connection and subscription
// JWTs, error and disconnect codes, pings). Admission, fan-out and presence
// are the hub's, shared with the Pusher front end.
package centrifugo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// MaxCommandsPerFrame bounds the commands one WebSocket message may carry
// besides a subscribe for each channel the app lets a connection have.
const MaxCommandsPerFrame = 100

// Command is one client command. Exactly one of the request fields is set
// for a command; none and ID 0 is a pong.
type Command struct {
	ID            uint32             `json:"id"`
	Connect       *ConnectRequest    `json:"connect"`
	Subscribe     *SubscribeRequest  `json:"subscribe"`
	Unsubscribe   *ChannelRequest    `json:"unsubscribe"`
	Publish       *PublishRequest    `json:"publish"`
	Presence      *ChannelRequest    `json:"presence"`
	PresenceStats *ChannelRequest    `json:"presence_stats"`
	History       *ChannelRequest    `json:"history"`
	Ping          *struct{}          `json:"ping"`
	Send          *json.RawMessage   `json:"send"`
	RPC           *json.RawMessage   `json:"rpc"`
	Refresh       *RefreshRequest    `json:"refresh"`
	SubRefresh    *SubRefreshRequest `json:"sub_refresh"`
}

// ConnectRequest is the connect command's body; other fields are ignored.
type ConnectRequest struct {
	Token string `json:"token"`
	Name  string `json:"name"`
}

// SubscribeRequest is the subscribe command's body. Recovery, positioning,
// delta and channel compaction fields are ignored.
type SubscribeRequest struct {
	Channel string `json:"channel"`
	Token   string `json:"token"`
	// JoinLeave asks for join and leave pushes (centrifuge-js's
	// joinLeave option); without it a presence subscriber gets none.
	JoinLeave bool `json:"join_leave"`
}

// ChannelRequest is the body of the commands that name only a channel.
type ChannelRequest struct {
	Channel string `json:"channel"`
}

// PublishRequest is the publish command's body.
type PublishRequest struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// RefreshRequest carries a new connection token.
type RefreshRequest struct {
	Token string `json:"token"`
}

// SubRefreshRequest carries a new subscription token.
type SubRefreshRequest struct {
	Channel string `json:"channel"`
	Token   string `json:"token"`
}

// Decoding errors: each closes the connection with 3501 "bad request".
var (
	ErrTooManyCommands = errors.New("too many commands in one message")
	ErrBadCommand      = errors.New("command is not a JSON object")
)

// DecodeCommands splits one message into its newline-delimited commands,
// in order, skipping blank lines. It refuses more than max commands and any
// line that is not a JSON object.
func DecodeCommands(data []byte, max int) ([]Command, error) {
	var out []Command
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if len(out) == max {
			return nil, fmt.Errorf("%w: at most %d", ErrTooManyCommands, max)
		}
		if line[0] != '{' {
			return nil, ErrBadCommand
		}
		var c Command
		if err := json.Unmarshal(line, &c); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadCommand, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// IsPong reports whether c is the empty command a client answers a ping with.
func (c *Command) IsPong() bool {
	return c.ID == 0 && c.Send == nil && c.method() == ""
}

// method names the command's request, "" when none is set.
func (c *Command) method() string {
	switch {
	case c.Connect != nil:
		return "connect"
	case c.Subscribe != nil:
		return "subscribe"
	case c.Unsubscribe != nil:
		return "unsubscribe"
	case c.Publish != nil:
		return "publish"
	case c.Presence != nil:
		return "presence"
	case c.PresenceStats != nil:
		return "presence_stats"
	case c.History != nil:
		return "history"
	case c.Ping != nil:
		return "ping"
	case c.Send != nil:
		return "send"
	case c.RPC != nil:
		return "rpc"
	case c.Refresh != nil:
		return "refresh"
	case c.SubRefresh != nil:
		return "sub_refresh"
	}
	return ""
}
