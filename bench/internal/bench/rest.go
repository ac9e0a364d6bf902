package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/heraldhq/herald/bench/internal/signature"
)

// ErrPublish is returned for a publish the server did not answer with 200,
// or answered with 200 and an error body.
var ErrPublish = errors.New("publish rejected")

// restClient sends signed REST requests to one app.
type restClient struct {
	base   *url.URL // scheme, host and any path prefix in front of /apps
	appID  string
	key    string
	secret string
	http   *http.Client
}

func newRESTClient(base, appID, key, secret string, conns int, timeout time.Duration) (*restClient, error) {
	u, err := parseRESTBase(base)
	if err != nil {
		return nil, err
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &restClient{base: u, appID: appID, key: key, secret: secret,
		http: &http.Client{Transport: tr, Timeout: timeout}}, nil
}

// eventsPath is the path a trigger request signs: /apps/{id}/events, without
// any reverse-proxy prefix (Pusher signing, §4.9).
func (c *restClient) eventsPath() string { return "/apps/" + c.appID + "/events" }

// newPublish builds the signed POST /apps/{id}/events request for body.
func (c *restClient) newPublish(ctx context.Context, body []byte, now time.Time) (*http.Request, error) {
	path := c.eventsPath()
	q := signature.Request(c.key, c.secret, http.MethodPost, path, nil, body, now.Unix())
	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

// publish sends one trigger request and waits for its answer.
func (c *restClient) publish(ctx context.Context, body []byte) error {
	req, err := c.newPublish(ctx, body, time.Now())
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// Not the URL: it carries a signature and makes every error distinct.
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("POST %s: %w", c.eventsPath(), ue.Err)
		}
		return err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || isErrorBody(msg) {
		return fmt.Errorf("%w: %s: %s", ErrPublish, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

func (c *restClient) close() { c.http.CloseIdleConnections() }

// appendPublishBody appends a trigger body: {"name","data","channel"} for
// one channel, {"name","data","channels"} for several (at most 100).
func appendPublishBody(dst []byte, name string, data []byte, channels ...string) []byte {
	dst = append(dst, `{"name":`...)
	dst = appendJSONString(dst, name)
	dst = append(dst, `,"data":`...)
	dst = appendJSONString(dst, data)
	if len(channels) == 1 {
		dst = append(dst, `,"channel":`...)
		dst = appendJSONString(dst, channels[0])
	} else {
		dst = append(dst, `,"channels":[`...)
		for i, ch := range channels {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, ch)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// channelToken is the auth a Pusher app backend returns for a private or
// presence subscription: key:hex(HMAC-SHA256(secret, socket_id:channel[:channel_data])).
func channelToken(key, secret, socketID, channel, channelData string) string {
	return signature.ChannelToken(key, secret, socketID, channel, channelData)
}

// parseRESTBase checks a --rest base: an http(s) URL with a host.
func parseRESTBase(base string) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("--rest: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("--rest: %q is not an http(s) URL", base)
	}
	return u, nil
}
