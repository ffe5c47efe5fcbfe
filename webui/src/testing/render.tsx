import type { ReactElement } from 'react'
import { QueryClientProvider } from '@tanstack/react-query'
import { render } from '@testing-library/react'
import { createMemoryRouter, RouterProvider } from 'react-router-dom'
import { AuthProvider } from '@/lib/auth'
import { makeQueryClient } from '@/lib/react-query'

/** Render `element` at `path` inside the real providers (query client, auth, router). */
export function renderPage(element: ReactElement, { path = '/', at = path, extra = [] }: { path?: string; at?: string; extra?: { path: string; element: ReactElement }[] } = {}) {
  const queryClient = makeQueryClient()
  queryClient.setDefaultOptions({ queries: { retry: false, refetchInterval: false, staleTime: 0 }, mutations: { retry: false } })
  const router = createMemoryRouter([{ path, element }, ...extra, { path: '*', element: <div>elsewhere</div> }], { initialEntries: [at] })
  const utils = render(
    <QueryClientProvider client={queryClient}>
      <AuthProvider>
        <RouterProvider router={router} />
      </AuthProvider>
    </QueryClientProvider>,
  )
  return { ...utils, router, queryClient }
}
