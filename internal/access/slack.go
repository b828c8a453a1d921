package access

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"
)

// Slack action ids and view callback ids of the access workflows. The
// interaction router dispatches every action id with the prefix ActionPrefix here.
const (
	ActionPrefix  = "access-review:"
	ActionKeep    = ActionPrefix + "keep"
	ActionRevoke  = ActionPrefix + "revoke"
	ActionConfirm = ActionPrefix + "confirm-disabled"
	// ViewReason is the modal asking why a flagged account is kept.
	ViewReason = ActionPrefix + "reason"
	// ReasonInput is the block and action id of the modal's text input.
	ReasonInput = "reason"
)

// Decisions.
const (
	DecisionKeep   = "keep"
	DecisionRevoke = "revoke"
)

// Notifier is what the access workflows need of Slack: a direct message to a
// person and an update of a message posted before (chat.update: a click can come
// days later, when a response_url has expired). slackapp.Messenger implements it.
type Notifier interface {
	PostDM(ctx context.Context, userID string, blocks []slack.Block, fallback string) (channel, ts string, err error)
	Update(ctx context.Context, channel, ts string, blocks []slack.Block, fallback string) error
}

// ItemValue is the value of an item's buttons: the campaign and the item.
func ItemValue(campaign, itemID string) string { return campaign + "|" + itemID }

// ParseItemValue is ItemValue's inverse.
func ParseItemValue(v string) (campaign, itemID string, err error) {
	campaign, itemID, ok := strings.Cut(v, "|")
	if !ok || campaign == "" || itemID == "" {
		return "", "", errors.New("the button's value does not name a campaign and an item")
	}
	return campaign, itemID, nil
}

// TaskValue is the value of a registry task's confirm button: the workflow to
// tell, the system and the account.
func TaskValue(workflowID, system, account string) string {
	return workflowID + "|" + system + "|" + account
}

// ParseTaskValue is TaskValue's inverse.
func ParseTaskValue(v string) (workflowID, system, account string, err error) {
	parts := strings.SplitN(v, "|", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", errors.New("the button's value does not name a workflow, system and account")
	}
	return parts[0], parts[1], parts[2], nil
}

// ReviewLine is an item as a reviewer's message shows it.
type ReviewLine struct {
	Item
	Decision string // empty: open
	By       string
	Problem  string
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}
func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

// escape makes an account name inert in mrkdwn.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "`", "'").Replace(s)
}

// ReviewMessage is a reviewer's message in a campaign: per item a section naming
// the system and account, then Keep and Revoke buttons while it is open, or who
// decided what once it is decided.
func ReviewMessage(campaign string, lines []ReviewLine) (string, []slack.Block) {
	open := 0
	for _, l := range lines {
		if l.Decision == "" {
			open++
		}
	}
	text := fmt.Sprintf("Access review %s: %d account(s) to review, %d open", campaign, len(lines), open)
	blocks := []slack.Block{slack.NewSectionBlock(mrkdwn(fmt.Sprintf(
		"*Access review %s*\nKeep what the person still needs for their job; revoke the rest. Undecided accounts are revoked at the deadline.", campaign)), nil, nil)}
	for _, l := range lines {
		var b strings.Builder
		fmt.Fprintf(&b, "*%s* `%s`", escape(l.System), escape(l.Account))
		if l.PersonID != "" {
			fmt.Fprintf(&b, " — person %s", escape(l.PersonID))
		} else {
			b.WriteString(" — mapped to nobody")
		}
		var notes []string
		if l.Service {
			notes = append(notes, "service account")
		}
		if l.AmazonData {
			notes = append(notes, "reaches Amazon data")
		}
		notes = append(notes, l.Flags...)
		if len(notes) > 0 {
			fmt.Fprintf(&b, "\n_%s_", strings.Join(notes, ", "))
		}
		if l.Flagged() && l.Decision == "" {
			b.WriteString("\nKeeping it needs a written reason.")
		}
		switch l.Decision {
		case DecisionKeep:
			fmt.Fprintf(&b, "\n:white_check_mark: kept by %s", escape(l.By))
		case DecisionRevoke:
			fmt.Fprintf(&b, "\n:no_entry: revoked by %s", escape(l.By))
		}
		if l.Problem != "" {
			fmt.Fprintf(&b, "\n:warning: %s", escape(l.Problem))
		}
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(b.String()), nil, nil, slack.SectionBlockOptionBlockID("item-"+l.ID)))
		if l.Decision == "" {
			v := ItemValue(campaign, l.ID)
			keep := slack.NewButtonBlockElement(ActionKeep, v, plain("Keep"))
			keep.Style = slack.StylePrimary
			revoke := slack.NewButtonBlockElement(ActionRevoke, v, plain("Revoke"))
			revoke.Style = slack.StyleDanger
			blocks = append(blocks, slack.NewActionBlock("actions-"+l.ID, keep, revoke))
		}
	}
	return text, blocks
}

// TaskMessage asks a person to disable a registry account by hand and confirm.
func TaskMessage(workflowID, system, account, why string, confirmedBy string) (string, []slack.Block) {
	text := fmt.Sprintf("Please disable %s account %s (%s) and confirm", system, account, why)
	body := fmt.Sprintf("*Disable by hand:* *%s* `%s`\n%s. Disable it in %s, then confirm here.", escape(system), escape(account), escape(why), escape(system))
	if confirmedBy != "" {
		body = fmt.Sprintf("*Disabled:* *%s* `%s` — confirmed by %s", escape(system), escape(account), escape(confirmedBy))
		return body, []slack.Block{slack.NewSectionBlock(mrkdwn(body), nil, nil)}
	}
	btn := slack.NewButtonBlockElement(ActionConfirm, TaskValue(workflowID, system, account), plain("It is disabled"))
	btn.Style = slack.StylePrimary
	return text, []slack.Block{slack.NewSectionBlock(mrkdwn(body), nil, nil), slack.NewActionBlock("task", btn)}
}

// ReasonModal asks why a flagged account is kept; its private metadata is the item's value.
func ReasonModal(campaign string, it Item) slack.ModalViewRequest {
	input := slack.NewPlainTextInputBlockElement(plain("Why does this account stay?"), ReasonInput)
	input.Multiline = true
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      ViewReason,
		PrivateMetadata: ItemValue(campaign, it.ID),
		Title:           plain("Keep flagged account"),
		Submit:          plain("Keep"),
		Close:           plain("Cancel"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewSectionBlock(mrkdwn(fmt.Sprintf("*%s* `%s` is flagged (%s). Write why it is kept; the reason goes into the evidence log. Name no one: use ids.",
				escape(it.System), escape(it.Account), strings.Join(it.Flags, ", "))), nil, nil),
			slack.NewInputBlock(ReasonInput, plain("Reason"), nil, input),
		}},
	}
}
