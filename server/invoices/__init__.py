"""E-invoices (电子发票): a tenant asks for an invoice over what they paid; staff review it
or a rule lets it through; a job issues it through the e-invoice platform (Nuonuo-style
open API) and delivers the PDF/OFD link; a refund of an invoiced payment reverses it with
a red invoice (冲红).

Never more than was paid: `service.requests.request_invoice` is the one place that decides
what is invoiceable (paid − refunded − held by active invoices), under row locks."""
