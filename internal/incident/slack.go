package incident

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// Slack action ids of the incident message's buttons (prefix ActionPrefix);
// each button's value is the incident id.
const (
	ActionPrefix        = "incident:"
	ActionApproveAmazon = ActionPrefix + "approve-amazon"
	ActionApproveICO    = ActionPrefix + "approve-ico"
	ActionAdvance       = ActionPrefix + "advance"
	// ActionICOReference opens the modal (ViewICOReported) that records the
	// ICO's reference number once its form is filled in.
	ActionICOReference = ActionPrefix + "ico-reference"
	ViewICOReported    = ActionPrefix + "ico-reported"
	// The modal's input block and element.
	ICOReferenceBlock   = "reference"
	ICOReferenceElement = "reference-input"
	// ActionEditAmazon opens the modal (ViewApproveEdited) in which an
	// approver edits the drafted notification and approves it.
	ActionEditAmazon    = ActionPrefix + "edit-amazon"
	ViewApproveEdited   = ActionPrefix + "approve-edited"
	EditedTextBlock     = "text"
	EditedTextElement   = "text-input"
	maxModalInitialText = 3000
	// ActionClose opens the modal (ViewClose) that closes the incident: a
	// lessons-learned note, or "false positive" with a reason, which a
	// second approver confirms with ActionConfirmFalsePositive.
	ActionClose                = ActionPrefix + "close"
	ViewClose                  = ActionPrefix + "close-submitted"
	ActionConfirmFalsePositive = ActionPrefix + "confirm-false-positive"
	CloseLessonsBlock          = "lessons"
	CloseLessonsElement        = "lessons-input"
	CloseFalsePositiveBlock    = "false-positive"
	CloseFalsePositiveElement  = "false-positive-input"
	CloseFalsePositiveOption   = "yes"
	CloseReasonBlock           = "reason"
	CloseReasonElement         = "reason-input"
)

// CloseModal asks how incident id is closed: a lessons-learned note, or, for
// a false positive, the reason (a second approver then confirms).
func CloseModal(id string) slack.ModalViewRequest {
	text := func(block, element, label, hint string) *slack.InputBlock {
		el := slack.NewPlainTextInputBlockElement(nil, element)
		el.Multiline, el.MaxLength = true, 3000
		in := slack.NewInputBlock(block, slack.NewTextBlockObject(slack.PlainTextType, label, false, false),
			slack.NewTextBlockObject(slack.PlainTextType, hint, false, false), el)
		in.Optional = true
		return in
	}
	fp := slack.NewCheckboxGroupsBlockElement(CloseFalsePositiveElement, slack.NewOptionBlockObject(CloseFalsePositiveOption,
		slack.NewTextBlockObject(slack.PlainTextType, "This was a false positive (a second approver confirms)", false, false), nil))
	fpBlock := slack.NewInputBlock(CloseFalsePositiveBlock, slack.NewTextBlockObject(slack.PlainTextType, "False positive", false, false), nil, fp)
	fpBlock.Optional = true
	return slack.ModalViewRequest{Type: slack.VTModal, CallbackID: ViewClose, PrivateMetadata: id,
		Title:  slack.NewTextBlockObject(slack.PlainTextType, "Close incident", false, false),
		Submit: slack.NewTextBlockObject(slack.PlainTextType, "Close", false, false),
		Close:  slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewSectionBlock(mrkdwn("Incident *"+id+"*: closing needs Amazon notified (and the ICO report recorded when personal data is involved), unless it was a false positive."), nil, nil),
			text(CloseLessonsBlock, CloseLessonsElement, "Lessons learned", "Required to close a real incident"),
			fpBlock,
			text(CloseReasonBlock, CloseReasonElement, "Why it was a false positive", "Required for a false positive"),
		}}}
}

// EditNotificationModal lets an approver edit the drafted Amazon
// notification of incident id and approve it as edited.
func EditNotificationModal(id, draft string) slack.ModalViewRequest {
	if len(draft) > maxModalInitialText {
		draft = draft[:maxModalInitialText]
	}
	el := slack.NewPlainTextInputBlockElement(nil, EditedTextElement)
	el.Multiline, el.InitialValue, el.MaxLength = true, draft, 3000
	input := slack.NewInputBlock(EditedTextBlock, slack.NewTextBlockObject(slack.PlainTextType, "Notification to Amazon", false, false), nil, el)
	return slack.ModalViewRequest{Type: slack.VTModal, CallbackID: ViewApproveEdited, PrivateMetadata: id,
		Title:  slack.NewTextBlockObject(slack.PlainTextType, "Edit and send", false, false),
		Submit: slack.NewTextBlockObject(slack.PlainTextType, "Approve and send", false, false),
		Close:  slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false),
		Blocks: slack.Blocks{BlockSet: []slack.Block{input}}}
}

// ICOReferenceModal asks for the ICO's reference number of incident id.
func ICOReferenceModal(id string) slack.ModalViewRequest {
	input := slack.NewInputBlock(ICOReferenceBlock, slack.NewTextBlockObject(slack.PlainTextType, "ICO reference number", false, false),
		slack.NewTextBlockObject(slack.PlainTextType, "As shown when the ICO's breach report form was submitted", false, false),
		slack.NewPlainTextInputBlockElement(nil, ICOReferenceElement))
	return slack.ModalViewRequest{Type: slack.VTModal, CallbackID: ViewICOReported, PrivateMetadata: id,
		Title:  slack.NewTextBlockObject(slack.PlainTextType, "ICO report filed", false, false),
		Submit: slack.NewTextBlockObject(slack.PlainTextType, "Record", false, false),
		Close:  slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewSectionBlock(mrkdwn("Incident *"+id+"*: record the reference the ICO gave, which stops the ICO clock."), nil, nil),
			input,
		}}}
}

// View is the workflow's state the incident message shows.
type View struct {
	Stage         string     `json:"stage"`
	NextStage     string     `json:"nextStage,omitempty"`
	AmazonDueAt   time.Time  `json:"amazonDueAt"`
	ICODueAt      *time.Time `json:"icoDueAt,omitempty"`
	AmazonSentAt  *time.Time `json:"amazonSentAt,omitempty"`
	ICOReportedAt *time.Time `json:"icoReportedAt,omitempty"`
	ICOApproved   bool       `json:"icoApproved"`
	Closed        bool       `json:"closed"`
	Outcome       string     `json:"outcome,omitempty"`
	Breaches      []string   `json:"breaches,omitempty"`
	// FalsePositiveProposed: an approver proposed closing as a false
	// positive and a second one may confirm.
	FalsePositiveProposed bool `json:"falsePositiveProposed,omitempty"`
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

func when(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format(time.RFC1123))
}

// Blocks renders the incident's Slack message: title, stage, both deadlines,
// what was sent, the Amazon draft while it waits for approval, and the buttons
// that are still useful.
func Blocks(inc Incident, v View, draft string) []slack.Block {
	head := fmt.Sprintf("*Incident %s* (%s): %s\nStage: *%s*", inc.ID, inc.Severity, inc.Title, v.Stage)
	if v.Closed {
		head += fmt.Sprintf("\nClosed: %s", v.Outcome)
	}
	blocks := []slack.Block{slack.NewSectionBlock(mrkdwn(head), nil, nil)}
	amazon := "Amazon: due " + when(v.AmazonDueAt)
	if v.AmazonSentAt != nil {
		amazon = "Amazon: notified " + when(*v.AmazonSentAt)
	}
	fields := []*slack.TextBlockObject{mrkdwn(amazon)}
	if v.ICODueAt != nil {
		ico := "ICO: due " + when(*v.ICODueAt)
		if v.ICOReportedAt != nil {
			ico = "ICO: reported " + when(*v.ICOReportedAt)
		}
		fields = append(fields, mrkdwn(ico))
	}
	blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
	if len(v.Breaches) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(":rotating_light: Deadline missed: "+strings.Join(v.Breaches, ", ")), nil, nil))
	}
	if v.AmazonSentAt == nil && draft != "" && !v.Closed {
		if len(draft) > 2900 {
			draft = draft[:2900] + "..."
		}
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn("*Draft notification to Amazon*\n```"+draft+"```"), nil, nil))
	}
	if v.Closed {
		return blocks
	}
	var buttons []slack.BlockElement
	if v.AmazonSentAt == nil {
		buttons = append(buttons, slack.NewButtonBlockElement(ActionApproveAmazon, inc.ID, slack.NewTextBlockObject(slack.PlainTextType, "Approve and send to Amazon", false, false)).WithStyle(slack.StylePrimary),
			slack.NewButtonBlockElement(ActionEditAmazon, inc.ID, slack.NewTextBlockObject(slack.PlainTextType, "Edit and send...", false, false)))
	}
	if v.ICODueAt != nil && !v.ICOApproved && v.ICOReportedAt == nil {
		buttons = append(buttons, slack.NewButtonBlockElement(ActionApproveICO, inc.ID, slack.NewTextBlockObject(slack.PlainTextType, "Approve ICO report", false, false)))
	}
	if v.ICODueAt != nil && v.ICOApproved && v.ICOReportedAt == nil {
		buttons = append(buttons, slack.NewButtonBlockElement(ActionICOReference, inc.ID, slack.NewTextBlockObject(slack.PlainTextType, "ICO report filed...", false, false)))
	}
	if v.NextStage != "" {
		buttons = append(buttons, slack.NewButtonBlockElement(ActionAdvance, inc.ID, slack.NewTextBlockObject(slack.PlainTextType, "Next stage: "+v.NextStage, false, false)))
	}
	if v.FalsePositiveProposed {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn("Proposed to close as a false positive: a second approver confirms."), nil, nil))
		buttons = append(buttons, slack.NewButtonBlockElement(ActionConfirmFalsePositive, inc.ID, slack.NewTextBlockObject(slack.PlainTextType, "Confirm false positive", false, false)))
	}
	buttons = append(buttons, slack.NewButtonBlockElement(ActionClose, inc.ID, slack.NewTextBlockObject(slack.PlainTextType, "Close...", false, false)))
	if len(buttons) > 0 {
		blocks = append(blocks, slack.NewActionBlock("incident-actions", buttons...))
	}
	return blocks
}

// Fallback is the message's notification text (no title: it shows in
// notifications and on lock screens).
func Fallback(inc Incident, v View) string {
	return fmt.Sprintf("Incident %s (%s), stage %s", inc.ID, inc.Severity, v.Stage)
}
