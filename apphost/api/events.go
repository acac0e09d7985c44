package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Event types of GET /v1/events.
const (
	// EventCreated, EventUpdated and EventStatus carry the app as a read returns it (App); EventDeleted
	// carries only its name and last generation.
	EventCreated = "created" // a new app was accepted (generation 1)
	EventUpdated = "updated" // the app's spec, desired state or labels changed (generation may have risen)
	EventStatus  = "status"  // only the app's status (or its error) changed
	EventDeleted = "deleted" // the app was deleted
	// EventReady is the first event of a stream opened without a last event id: from here on every change
	// is delivered, so a client that lists the apps after it misses nothing.
	EventReady = "ready"
	// EventReset answers a last event id the runtime can no longer resume from (too old, from before a
	// restart, or unknown): changes may have been missed, and the client must list the apps again.
	EventReset = "reset"
)

// HeaderLastEventID is the header of GET /v1/events that resumes a stream after that event.
const HeaderLastEventID = "Last-Event-ID"

// Event is one message of the runtime's event stream.
type Event struct {
	// ID resumes the stream after this event (HeaderLastEventID); it is the SSE id, not part of the data.
	ID   string    `json:"-"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	// Name and Generation name the app (empty for ready and reset).
	Name       string `json:"name,omitempty"`
	Generation int64  `json:"generation,omitempty"`
	// App is the app after the change, secrets as hashes, for created, updated and status.
	App *App `json:"app,omitempty"`
}

// EventStream reads GET /v1/events. It is not safe for concurrent use.
type EventStream struct {
	body io.ReadCloser
	rd   *bufio.Reader
	// LastID is the id of the last event Next returned (or the one the stream was opened with).
	LastID string
}

// Events opens the runtime's event stream, resuming after lastEventID when it is not empty. The stream
// has no overall timeout: it ends when ctx ends, when the runtime closes it (shutdown, or a client too
// slow to keep up) or when the connection breaks; reopen it with LastID to resume.
func (c *Client) Events(ctx context.Context, lastEventID string) (*EventStream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint+"/v1/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if lastEventID != "" {
		req.Header.Set(HeaderLastEventID, lastEventID)
	}
	hc := &http.Client{Transport: c.http.Transport} // the client's timeout would cut a long stream
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, responseError(resp)
	}
	return &EventStream{body: resp.Body, rd: bufio.NewReaderSize(resp.Body, 64<<10), LastID: lastEventID}, nil
}

// maxEventBytes bounds one event's data line.
const maxEventBytes = 8 << 20

// Next blocks until the next event and returns it; it returns io.EOF when the runtime ended the stream.
func (s *EventStream) Next() (Event, error) {
	var id, typ string
	var data []byte
	for {
		line, err := s.rd.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long data line: gather it whole, within a bound.
			buf := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) && len(buf) <= maxEventBytes {
				line, err = s.rd.ReadSlice('\n')
				buf = append(buf, line...)
			}
			if len(buf) > maxEventBytes {
				return Event{}, fmt.Errorf("event stream: an event is larger than %d bytes", maxEventBytes)
			}
			line = buf
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(line) == 0 {
				return Event{}, io.EOF
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Event{}, fmt.Errorf("event stream: %w", err)
		}
		text := strings.TrimRight(string(line), "\r\n")
		if text == "" {
			if typ == "" && data == nil {
				continue // a keep-alive or a retry hint
			}
			var ev Event
			if len(data) > 0 {
				if err := json.Unmarshal(data, &ev); err != nil {
					return Event{}, fmt.Errorf("event stream: decode %s event: %w", typ, err)
				}
			}
			if typ != "" {
				ev.Type = typ
			}
			ev.ID = id
			if id != "" {
				s.LastID = id
			}
			return ev, nil
		}
		field, value, _ := strings.Cut(text, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			id = value
		case "event":
			typ = value
		case "data":
			if data != nil {
				data = append(data, '\n')
			}
			data = append(data, value...)
		}
	}
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }
