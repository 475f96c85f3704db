"""marketplace: categories, contracts, projects, proposals

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 20:46:52.228641
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('categories',
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('parent_slug', sa.String(length=64), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['parent_slug'], ['categories.slug'], name=op.f('fk_categories_parent_slug_categories')),
    sa.PrimaryKeyConstraint('slug', name=op.f('pk_categories'))
    )
    with op.batch_alter_table('categories', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_categories_parent_slug'), ['parent_slug'], unique=False)

    op.create_table('contracts',
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('developer_id', sa.Uuid(), nullable=False),
    sa.Column('origin_type', sa.String(length=20), nullable=False),
    sa.Column('origin_id', sa.Uuid(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('hourly', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['users.id'], name=op.f('fk_contracts_client_id_users')),
    sa.ForeignKeyConstraint(['developer_id'], ['users.id'], name=op.f('fk_contracts_developer_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contracts')),
    sa.UniqueConstraint('origin_type', 'origin_id', name=op.f('uq_contracts_origin_type'))
    )
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contracts_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_contracts_developer_id'), ['developer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_contracts_status'), ['status'], unique=False)

    op.create_table('projects',
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('category_slug', sa.String(length=64), nullable=False),
    sa.Column('skills', sa.JSON(), nullable=False),
    sa.Column('budget_type', sa.String(length=10), nullable=False),
    sa.Column('budget_min', sa.Integer(), nullable=False),
    sa.Column('budget_max', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('duration', sa.String(length=20), nullable=False),
    sa.Column('experience_level', sa.String(length=20), nullable=False),
    sa.Column('visibility', sa.String(length=20), nullable=False),
    sa.Column('screening_questions', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('hired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('proposal_count', sa.Integer(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['category_slug'], ['categories.slug'], name=op.f('fk_projects_category_slug_categories')),
    sa.ForeignKeyConstraint(['client_id'], ['users.id'], name=op.f('fk_projects_client_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects'))
    )
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_projects_category_slug'), ['category_slug'], unique=False)
        batch_op.create_index(batch_op.f('ix_projects_client_id'), ['client_id'], unique=False)
        batch_op.create_index('ix_projects_status_published_at', ['status', 'published_at'], unique=False)

    op.create_table('milestones',
    sa.Column('contract_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('due_days', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_milestones_contract_id_contracts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_milestones'))
    )
    with op.batch_alter_table('milestones', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_milestones_contract_id'), ['contract_id'], unique=False)

    op.create_table('project_invites',
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('developer_id', sa.Uuid(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['developer_id'], ['users.id'], name=op.f('fk_project_invites_developer_id_users')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_project_invites_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', 'developer_id', name=op.f('pk_project_invites'))
    )
    with op.batch_alter_table('project_invites', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_project_invites_developer_id'), ['developer_id'], unique=False)

    op.create_table('proposals',
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('developer_id', sa.Uuid(), nullable=False),
    sa.Column('cover_letter', sa.Text(), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('duration_days', sa.Integer(), nullable=False),
    sa.Column('milestones', sa.JSON(), nullable=False),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('decline_message', sa.Text(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('contract_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['developer_id'], ['users.id'], name=op.f('fk_proposals_developer_id_users')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_proposals_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proposals')),
    sa.UniqueConstraint('project_id', 'developer_id', name=op.f('uq_proposals_project_id'))
    )
    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_proposals_developer_id'), ['developer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_proposals_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_proposals_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_proposals_status'))
        batch_op.drop_index(batch_op.f('ix_proposals_project_id'))
        batch_op.drop_index(batch_op.f('ix_proposals_developer_id'))

    op.drop_table('proposals')
    with op.batch_alter_table('project_invites', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_invites_developer_id'))

    op.drop_table('project_invites')
    with op.batch_alter_table('milestones', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_milestones_contract_id'))

    op.drop_table('milestones')
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_index('ix_projects_status_published_at')
        batch_op.drop_index(batch_op.f('ix_projects_client_id'))
        batch_op.drop_index(batch_op.f('ix_projects_category_slug'))

    op.drop_table('projects')
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contracts_status'))
        batch_op.drop_index(batch_op.f('ix_contracts_developer_id'))
        batch_op.drop_index(batch_op.f('ix_contracts_client_id'))

    op.drop_table('contracts')
    with op.batch_alter_table('categories', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_categories_parent_slug'))

    op.drop_table('categories')
