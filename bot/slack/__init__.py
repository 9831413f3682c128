"""Everything Slack-facing: listeners stay thin (parse → operation → card); cards and modals are pure."""
