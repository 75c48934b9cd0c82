"""The web console (issue 17): server-rendered GOV.UK Design System pages under /console for
people without a CRM. Every page calls the same services as the API; no rule lives here."""
