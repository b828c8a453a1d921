package testenv

import (
	"context"
	"fmt"
	"net/url"
)

// MessageText returns the plain-text body of the stored message with Mailpit's
// id (Message.ID), from GET /api/v1/message/{ID}.
func (m *Mailpit) MessageText(ctx context.Context, id string) (string, error) {
	var msg struct {
		Text string `json:"Text"`
	}
	if err := m.get(ctx, "/api/v1/message/"+url.PathEscape(id), &msg); err != nil {
		return "", fmt.Errorf("testenv: mailpit message: %w", err)
	}
	return msg.Text, nil
}
