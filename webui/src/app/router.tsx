/** Client routes. Pages load lazily so the login page's bundle stays small. */
import { lazy, Suspense, type ReactNode } from 'react'
import { createBrowserRouter, Navigate, Outlet } from 'react-router-dom'
import { AppLayout } from '@/components/layout/AppLayout'
import { TableSkeleton } from '@/components/ui/Feedback'
import { LoginPage } from '@/features/auth/components/LoginPage'
import { HomeRedirect, ProtectedRoute, RequireScope } from './ProtectedRoute'

const DashboardPage = lazy(() => import('@/features/dashboard/components/DashboardPage'))
const FlowsPage = lazy(() => import('@/features/flows/components/FlowsPage'))
const NodesPage = lazy(() => import('@/features/nodes/components/NodesPage'))
const RulesPage = lazy(() => import('@/features/rules/components/RulesPage'))
const UsersPage = lazy(() => import('@/features/users/components/UsersPage'))
const RolesPage = lazy(() => import('@/features/roles/components/RolesPage'))
const TeamsPage = lazy(() => import('@/features/teams/components/TeamsPage'))
const ClientsPage = lazy(() => import('@/features/clients/components/ClientsPage'))
const AuditPage = lazy(() => import('@/features/audit/components/AuditPage'))
const ProfilePage = lazy(() => import('@/features/profile/components/ProfilePage'))
const ForgotPasswordPage = lazy(() => import('@/features/auth/components/ForgotPasswordPage'))
const ResetPasswordPage = lazy(() => import('@/features/auth/components/ResetPasswordPage'))
const NotFoundPage = lazy(() => import('./NotFoundPage'))

const page = (node: ReactNode) => <Suspense fallback={<TableSkeleton label="Loading page" />}>{node}</Suspense>
const scoped = (scope: string, node: ReactNode, somewhere = false) =>
  page(
    <RequireScope scope={scope} somewhere={somewhere}>
      {node}
    </RequireScope>,
  )

export function createRouter() {
  return createBrowserRouter([
    { path: '/login', element: <LoginPage /> },
    { path: '/forgot-password', element: page(<ForgotPasswordPage />) },
    { path: '/reset-password', element: page(<ResetPasswordPage />) },
    {
      element: (
        <ProtectedRoute>
          <AppLayout />
        </ProtectedRoute>
      ),
      children: [
        { index: true, element: <HomeRedirect /> },
        { path: '/dashboard', element: scoped('stats:read', <DashboardPage />, true) },
        { path: '/flows', element: scoped('flows:read', <FlowsPage />, true) },
        { path: '/nodes', element: scoped('dataplane:read', <NodesPage />, true) },
        { path: '/rules', element: scoped('rules:read', <RulesPage />) },
        {
          path: '/admin',
          element: <Outlet />,
          children: [
            { index: true, element: <Navigate to="/admin/users" replace /> },
            { path: 'users', element: scoped('users:read', <UsersPage />) },
            { path: 'roles', element: scoped('roles:read', <RolesPage />) },
            { path: 'teams', element: scoped('teams:read', <TeamsPage />) },
            { path: 'clients', element: scoped('clients:read', <ClientsPage />) },
            { path: 'audit', element: scoped('audit:read', <AuditPage />) },
          ],
        },
        { path: '/profile', element: page(<ProfilePage />) },
        { path: '*', element: page(<NotFoundPage />) },
      ],
    },
  ])
}
