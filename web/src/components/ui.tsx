/** The portal's shared components, one concern per file; pages import them from here. */
export { Ago } from './Ago.tsx';
export { Button } from './Button.tsx';
export { CopyField } from './CopyField.tsx';
export { ConfirmDialog, Dialog, FormActions } from './Dialog.tsx';
export { EmptyState, ErrorNote, Loaded, Loading, Notice } from './Feedback.tsx';
export { Field, Select, TextInput } from './Form.tsx';
export { PageHeader, Section, useHashTarget } from './Page.tsx';
export { PhaseBadge } from './PhaseBadge.tsx';
export { QuotaBar } from './QuotaBar.tsx';
export { Table, type Column, type TableProps } from './Table.tsx';
