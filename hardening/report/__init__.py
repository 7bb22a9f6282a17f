"""Report stage: findings rendered as SARIF (for GitHub code scanning), JSON and Markdown."""
