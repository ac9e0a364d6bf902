package bench

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"time"
)

// Client protocols of the subscribers.
const (
	ProtocolPusher     = "pusher"
	ProtocolCentrifugo = "centrifugo"
)

// connectToken mints a Centrifugo connection JWT for user sub: HS256 over
// {"sub":…,"exp":…} with secret.
func connectToken(secret, sub string, exp time.Time) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims := appendJSONString([]byte(`{"sub":`), sub)
	claims = append(claims, `,"exp":`...)
	claims = strconv.AppendInt(claims, exp.Unix(), 10)
	claims = append(claims, '}')
	signing := header + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// nextID is the id of the connection's next Centrifugo command.
func (c *conn) nextID() uint32 {
	c.cfNextID++
	return c.cfNextID
}

func appendCentrifugoConnect(dst []byte, id uint32, token string) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, uint64(id), 10)
	dst = append(dst, `,"connect":{"token":`...)
	dst = appendJSONString(dst, token)
	return append(dst, `,"name":"herald-bench"}}`...)
}

func appendCentrifugoSubscribe(dst []byte, id uint32, channel string) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, uint64(id), 10)
	dst = append(dst, `,"subscribe":{"channel":`...)
	dst = appendJSONString(dst, channel)
	return append(dst, `}}`...)
}

var (
	cfPushPrefix = []byte(`{"push":{`)
	cfPubKey     = []byte(`"pub":{`)
	cfEmpty      = []byte(`{}`)
	cfErrorKey   = []byte(`"error":{`)
	cfConnectKey = []byte(`"connect":{`)
	cfSubKey     = []byte(`"subscribe":{`)
	cfPongTrue   = []byte(`"pong":true`)
	eventNameB   = []byte(EventName)
)

// centrifugoMessage handles one WebSocket message of the Centrifugo JSON
// protocol: one or more newline-separated replies and pushes.
func (c *conn) centrifugoMessage(msg []byte, now int64, sh *shard) {
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) > 0 {
			c.centrifugoLine(line, now, sh)
		}
	}
}

func (c *conn) centrifugoLine(line []byte, now int64, sh *shard) {
	switch {
	case bytes.HasPrefix(line, cfPushPrefix):
		// Publications are the hot path: the scenario checks the mark in
		// their data. Joins, leaves and the rest are not counted.
		if bytes.Contains(line, cfPubKey) {
			c.sk.message(c, eventNameB, line, now, sh)
		}
	case bytes.Equal(line, cfEmpty):
		// The server's ping.
		if c.cfPong {
			sh.pongsSent.Add(1)
			c.writeMessage(cfEmpty)
		}
	case bytes.Contains(line, cfErrorKey):
		sh.errors.Add(1)
		if c.subFailed == nil {
			c.subFailed = bytes.Clone(line)
		}
		c.signalSub(false)
	case bytes.Contains(line, cfConnectKey):
		if id := valueOf(line, "client"); len(id) > 0 {
			c.socketID = string(id)
		}
		c.cfPong = bytes.Contains(line, cfPongTrue)
	case bytes.Contains(line, cfSubKey):
		c.subscribed++
		c.signalSub(true)
	}
}
