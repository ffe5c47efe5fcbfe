import { Link } from 'react-router-dom'

export default function NotFoundPage() {
  return (
    <div className="mx-auto mt-16 max-w-lg text-center">
      <h1 className="text-2xl font-semibold text-amber-400">Page not found</h1>
      <p className="mt-2 text-amber-500">There is no page at this address.</p>
      <Link to="/" className="mt-4 inline-block text-primary-400 underline hover:text-primary-300">
        Go to the dashboard
      </Link>
    </div>
  )
}
