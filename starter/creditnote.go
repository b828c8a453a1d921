package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/invoice"
	"github.com/plusranger/dpp/internal/orders"
	"github.com/plusranger/dpp/workflows"
)

const creditNoteUsage = `usage:
  starter credit-note issue <amazonOrderId> -refund-id ID -reason CODE -by OPERATOR (-full | -line ITEM:QTY | -line ITEM:AMOUNT ...)
  starter credit-note issue <amazonOrderId> -cancelled -by OPERATOR
  starter credit-note list <amazonOrderId>
  starter credit-note upload <creditNoteNumber> [-wait]
  starter credit-note <creditNoteNumber> -o file.pdf -purpose CODE [-by OPERATOR]`

// creditNoteCmd issues, lists and exports credit notes.
func creditNoteCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(creditNoteUsage)
	}
	switch args[0] {
	case "issue":
		return issueCreditNote(ctx, args[1:])
	case "list":
		return listCreditNotes(ctx, args[1:])
	case "upload":
		return uploadCreditNote(ctx, args[1:])
	}
	return exportCreditNote(ctx, args)
}

// lineFlag collects -line ITEM:QTY (units) or ITEM:AMOUNT (with two decimals).
type lineFlag []workflows.RefundLine

func (l *lineFlag) String() string { return fmt.Sprint(*l) }

func (l *lineFlag) Set(v string) error {
	item, what, ok := strings.Cut(v, ":")
	if !ok || item == "" || what == "" {
		return errors.New("want ORDER_ITEM_ID:QUANTITY or ORDER_ITEM_ID:AMOUNT (e.g. 12345678901234:1 or 12345678901234:12.50)")
	}
	if strings.Contains(what, ".") {
		*l = append(*l, workflows.RefundLine{OrderItemID: item, Amount: what})
		return nil
	}
	q, err := strconv.ParseInt(what, 10, 64)
	if err != nil || q <= 0 {
		return errors.New("the quantity must be a whole number above zero (an amount has two decimals, e.g. 12.50)")
	}
	*l = append(*l, workflows.RefundLine{OrderItemID: item, Quantity: q})
	return nil
}

// issueCreditNote asks the order's running lifecycle for the credit note (the
// refund Update: its status then lists it); once the lifecycle has ended, the
// PII purged, it issues it from the invoice kept in the tax record.
func issueCreditNote(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("credit-note issue", flag.ExitOnError)
	refundID := fs.String("refund-id", "", "the refund's id (Amazon's adjustment id, or the seller's): one credit note per refund")
	reason := fs.String("reason", "", "why: one of "+strings.Join(workflows.RefundReasons, ", "))
	by := fs.String("by", defaultUser(), "who asks: an identifier in DPP_OPERATORS, kept on the credit note and in the evidence log")
	full := fs.Bool("full", false, "credit everything on the invoice not yet credited")
	cancelled := fs.Bool("cancelled", false, "the order was cancelled after its invoice: credit all that is left (one per order)")
	var lines lineFlag
	fs.Var(&lines, "line", "an item refunded: ORDER_ITEM_ID:QUANTITY or ORDER_ITEM_ID:AMOUNT (VAT-inclusive, e.g. 12.50); repeat for more")
	orderID := parseAroundID(fs, args)
	if orderID == "" {
		return errors.New(creditNoteUsage)
	}
	if err := (workflows.OrderInput{AmazonOrderID: orderID}).Validate(); err != nil {
		return err
	}
	req := orders.CreditRequest{AmazonOrderID: orderID, By: *by}
	var refund []byte
	if *cancelled {
		if *refundID != "" || *reason != "" || *full || len(lines) > 0 {
			return errors.New("-cancelled takes only -by: the whole invoice not yet credited is credited")
		}
		req.SourceID, req.Reason, req.Full = orders.SourceCancellation, "cancelled", true
	} else {
		// The refund is checked exactly as the workflow checks its signal.
		sig := workflows.RefundSignal{RefundID: *refundID, Reason: *reason, By: *by, Full: *full, Lines: lines}
		var err error
		if refund, err = json.Marshal(sig); err != nil {
			return err
		}
		var check workflows.RefundSignal
		if err := json.Unmarshal(refund, &check); err != nil {
			return err
		}
		if err := errors.Join(check.Validate(), check.CheckCodes()); err != nil {
			return fmt.Errorf("refund: %w", err)
		}
		req.SourceID, req.Reason, req.Full = orders.RefundSource(*refundID), *reason, *full
		for _, l := range lines {
			req.Lines = append(req.Lines, orders.CreditLineRequest{OrderItemID: l.OrderItemID, Quantity: l.Quantity, AmountMinor: l.AmountMinor()})
		}
	}
	a, err := open(ctx, app.Sealing|app.Temporal)
	if err != nil {
		return err
	}
	defer a.Close()
	if !slices.Contains(a.Config.Operators, *by) {
		return errNotOperator
	}
	if refund != nil {
		h, err := a.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: workflows.OrderWorkflowID(orderID),
			UpdateName: workflows.UpdateRefund, Args: []any{json.RawMessage(refund)}, WaitForStage: client.WorkflowUpdateStageCompleted})
		var notFound *serviceerror.NotFound
		switch {
		case err == nil:
			var st workflows.OrderStatus
			if err := h.Get(ctx, &st); err != nil {
				return err
			}
			for _, c := range st.CreditNotes {
				if c.SourceID == req.SourceID {
					fmt.Printf("%s: credit note %s for %s (VAT %s) against invoice %s, issued by the order's lifecycle\n",
						orderID, c.Number, invoice.FormatMoney(c.TotalGrossMinor, c.Currency), invoice.FormatMoney(c.TotalVATMinor, c.Currency), c.InvoiceNumber)
					return nil
				}
			}
			// The lifecycle knew the refund from before it listed credit notes: the store says.
		case !errors.As(err, &notFound):
			return err
		}
		// No running lifecycle (ended, purged): issue from the tax record.
	}
	cn, err := a.Orders.IssueCreditNote(ctx, req)
	if err != nil {
		return err
	}
	fmt.Printf("%s: credit note %s for %s (VAT %s) against invoice %s, issued %s\n", orderID, cn.Number,
		invoice.FormatMoney(cn.TotalGrossMinor, cn.Currency), invoice.FormatMoney(cn.TotalVATMinor, cn.Currency), cn.InvoiceNumber,
		cn.IssuedAt.Format("2006-01-02T15:04:05Z"))
	// Its lifecycle has ended, so it cannot start the upload: this command does.
	started, err := a.StartCreditNoteUpload(ctx, orderID, cn.Number)
	if err != nil {
		return fmt.Errorf("credit note %s is issued; its upload to Amazon did not start (run `starter credit-note upload %s`): %w",
			cn.Number, cn.Number, err)
	}
	if started {
		fmt.Printf("uploading it to Amazon: %s\n", workflows.TaxDocumentUploadWorkflowID(cn.Number))
	}
	return nil
}

func listCreditNotes(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New(creditNoteUsage)
	}
	a, err := open(ctx, app.Sealing)
	if err != nil {
		return err
	}
	defer a.Close()
	notes, err := a.Orders.CreditNotes(ctx, args[0])
	if err != nil {
		return err
	}
	if len(notes) == 0 {
		fmt.Printf("%s: no credit notes\n", args[0])
	}
	for _, c := range notes {
		state := "kept until " + c.RetainUntil.Format("2006-01-02")
		if c.PurgedAt != nil {
			state = "purged " + c.PurgedAt.Format("2006-01-02")
		}
		fmt.Printf("%s  %s  invoice %s  %-22s %-16s by %-12s gross %s  VAT %s  %s\n", c.Number, c.IssuedAt.Format("2006-01-02"),
			c.InvoiceNumber, c.SourceID, c.Reason, c.By, invoice.FormatMoney(c.TotalGrossMinor, c.Currency),
			invoice.FormatMoney(c.TotalVATMinor, c.Currency), state)
	}
	return nil
}

// exportCreditNote writes a credit note's PDF, recording the export as
// `starter invoice` does.
func exportCreditNote(ctx context.Context, args []string) error {
	return exportTaxDocument(ctx, args, "credit-note", creditNoteUsage,
		func(a *app.App, number, by, purpose string) ([]byte, string, error) {
			pdf, cn, err := a.Orders.ExportCreditNote(ctx, number, by, purpose)
			if err != nil {
				return nil, "", err
			}
			return pdf, fmt.Sprintf("credit note %s of order %s against invoice %s", cn.Number, cn.AmazonOrderID, cn.InvoiceNumber), nil
		})
}
